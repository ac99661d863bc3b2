"""The current catalog and how it is reloaded: incremental, atomic, never losing the last good
state. Only files that are new or changed are parsed; a file that breaks keeps serving the
version that last parsed while it still says `published: true` (and withholds it at once
otherwise); a directory that disappears keeps the whole last catalog."""

from __future__ import annotations

import gc
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .catalog import Catalog, ChangeTimes, Problem, empty_catalog, update_catalog
from .load.records import ParsedSeed, SeedFile
from .load.seed_file import parse_seed_file
from .load.tree import Changes, TreeIndex
from .load.watch import FULL_SCAN_EVERY, FolderWatcher
from .matching import choose_winner, file_time, note_change, seed_problems, withheld_copies
from .models import Article

logger = logging.getLogger(__name__)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while files are parsed: a load allocates millions
    of objects that all live on, each full collection walks them all again, and parsed YAML
    makes no reference cycles for it to find. (79 s to 48 s for 100,000 files here.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What one reload did, for /healthz and the log."""

    started: datetime
    duration_seconds: float
    files: int
    parsed: int
    unchanged: int
    removed: int
    failed: int
    stale: tuple[str, ...]
    rebuilt: bool
    error: str | None  # why the directory could not be read, when it could not
    # Files that broke without still saying `published: true`: their last good version is
    # no longer served.
    withheld: tuple[str, ...] = ()


WITHHELD = "its last good version is withheld: the file no longer says 'published: true'"
# Names that are not UTF-8 are shown escaped (`\xff`); see tree.unreadable_name.
MISNAMED_FILE = "file name is not valid UTF-8"
MISNAMED_FOLDER = "folder name is not valid UTF-8; nothing in it is read"


@dataclass(frozen=True, slots=True)
class FileState:
    latest: ParsedSeed  # what the file holds now, maybe an error
    good: ParsedSeed | None  # the latest version that parsed, served while `latest` fails
    withheld: bool = False  # a published good version was dropped by the fail-closed rule
    # The webUrl of the good version that rule dropped (published or not): while the file
    # fails, no other file's copy of that article is served either (fail closed per URL).
    withheld_url: str | None = None

    @property
    def served(self) -> ParsedSeed:
        if self.latest.error is not None and self.good is not None:
            return self.good
        return self.latest

    @property
    def url(self) -> str | None:
        """The webUrl this file serves, or withholds; None when it has neither."""
        article = self.served.article
        return article.url if article is not None else self.withheld_url


# One file's state before a reload and after (None: not in the catalog).
_Swap = tuple[FileState | None, FileState | None]


def _next_state(state: FileState | None, result: ParsedSeed) -> FileState:
    """The state of a file after parsing it again. Fail closed: a version that cannot be
    used keeps the last good one served only while its raw text still says
    `published: true`; otherwise that version is dropped for good (a broken takedown edit
    must take the article down, not leave it up, and keep its URL down: see withheld_url)."""
    if result.error is None:
        return FileState(result, result)
    if state is None:
        return FileState(result, None)
    good = state.good
    if good is not None and result.still_published:
        return FileState(result, good)
    was_shown = good is not None and good.article is not None and good.article.published
    url = good.article.url if good is not None and good.article is not None else state.withheld_url
    return FileState(result, None, state.withheld or was_shown, url)


def parse_serially(root: Path, files: Sequence[SeedFile], max_bytes: int) -> Iterator[ParsedSeed]:
    """Each file parsed in turn, in this process."""
    for seed_file in files:
        yield parse_seed_file(root, seed_file, max_bytes)


# How a reload parses its changed files, in their order: one by one here. The static export,
# which loads once with a core to spare, swaps in one that shares them (forkparse.py).
parse_files: Callable[[Path, Sequence[SeedFile], int], Iterable[ParsedSeed]] = parse_serially


class CatalogStore:
    """Holds the served catalog; `reload()` replaces it by one reference assignment."""

    def __init__(
        self,
        seeds_dir: str | Path,
        max_file_bytes: int,
        site_title: str,
        clock: Callable[[], datetime] = utc_now,
        watch: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seeds_dir = Path(seeds_dir)
        # With `watch`, reloads list only the folders inotify reported (see watch.py).
        self.watch = watch
        self._watcher: FolderWatcher | None = None
        self._partial_scans_left = 0
        self.max_file_bytes = max_file_bytes
        self.site_title = site_title
        self.clock = clock
        # Reload timing and staleness go by this clock: the wall clock may be stepped
        # (NTP, an operator) and would make a reload seem an hour old, or from the future.
        self.monotonic = monotonic
        self.reloading_since: float | None = None  # when the running reload started
        self.last_completed: float | None = None  # when the last reload ended
        self._files: dict[str, FileState] = {}
        # Which files hold each webUrl (a path, or a tuple of paths when several do: a set
        # per URL would cost 200 bytes each at 100,000 articles), which of them is served,
        # and the others, reported.
        self._paths_by_url: dict[str, str | tuple[str, ...]] = {}
        self._winners: dict[str, ParsedSeed] = {}
        self._duplicates: dict[str, list[Problem]] = {}
        # The error or warnings of each file that has any.
        self._problems: dict[str, list[Problem]] = {}
        self._failed: set[str] = set()
        self._stale: set[str] = set()
        self._withheld: set[str] = set()
        self._index = TreeIndex()
        # Files whose state came from a snapshot and is not in the catalog yet.
        self._unbuilt: set[str] = set()
        # The process that logged a reload last: a forked worker's first one is logged in full.
        self._logged_by: int | None = None
        # Called after each reload, under the reload lock, with the store and the report.
        self.after_reload: list[Callable[[CatalogStore, ReloadReport], None]] = []
        self._lock = threading.Lock()
        self.catalog: Catalog = empty_catalog(site_title)
        self.last_report: ReloadReport | None = None

    @property
    def degraded_reason(self) -> str | None:
        """Why the last reload could not read the directory, or None when it could."""
        return self.last_report.error if self.last_report else None

    def _next_catalog(
        self,
        changed: list[_Swap],
        stale: tuple[str, ...],
        now: datetime,
    ) -> Catalog:
        """The catalog with the changed files' articles swapped, rebuilding only what they touch."""
        touched_urls, changes = self._match_changed(changed)
        gone, arrived = self._choose_winners(touched_urls)
        problems = self._all_problems(stale)
        return update_catalog(self.catalog, gone, arrived, now, problems, changes, len(self._files))

    def _match_changed(self, changed: list[_Swap]) -> tuple[set[str], ChangeTimes]:
        """File the changed files under their webUrls; the URLs they touch, and when each
        collection of their articles changed."""
        touched_urls: set[str] = set()
        changes: ChangeTimes = {}
        for before, after in changed:
            if before is not None:
                self._forget(before)
            if after is not None:
                self._remember(after)
            for state in (before, after):
                url = None if state is None else state.url
                if state is None or url is None:
                    continue
                touched_urls.add(url)
                seed = state.served
                if seed.article is not None:
                    when = (
                        file_time(after.served) if after is not None else self._removal_time(seed)
                    )
                    note_change(changes, seed.article, when)
        return touched_urls, changes

    def _choose_winners(self, touched_urls: set[str]) -> tuple[list[Article], list[Article]]:
        """Choose again which file each touched webUrl serves: the articles that leave the
        catalog and those that join it."""
        gone, arrived = [], []
        for url in touched_urls:
            previous = self._winners.pop(url, None)
            self._duplicates.pop(url, None)
            winner = self._choose_winner(url)
            if winner is previous:
                continue
            if previous is not None and previous.article is not None:
                gone.append(previous.article)
            if winner is not None and winner.article is not None:
                arrived.append(winner.article)
        return gone, arrived

    def _choose_winner(self, url: str) -> ParsedSeed | None:
        """The served file of a webUrl, noting it and its duplicates; None when no file has it."""
        paths = self._paths_of(url)
        if not paths:
            return None
        if len(paths) == 1:  # the usual case, without a sort
            winner = self._files[paths[0]].served
            if winner.article is None:  # a failed takedown: nothing to serve
                return None
        else:
            served = [self._files[path].served for path in paths]
            blockers = [seed.file.path for seed in served if seed.article is None]
            if blockers:  # a failed takedown withholds every copy of its article
                self._duplicates[url] = withheld_copies(min(blockers), set(paths) - set(blockers))
                return None
            winner, duplicates = choose_winner(served)
            if duplicates:
                self._duplicates[url] = duplicates
        self._winners[url] = winner
        return winner

    def _all_problems(self, stale: tuple[str, ...]) -> list[Problem]:
        """Every file's problems: errors and warnings, duplicates, stale versions served."""
        problems = [p for file_problems in self._problems.values() for p in file_problems]
        problems += [p for duplicates in self._duplicates.values() for p in duplicates]
        problems += [
            Problem(path, f"{self._files[path].latest.error}; serving its last good version", False)
            for path in stale
        ]
        problems += [
            Problem(name, MISNAMED_FOLDER if name.endswith("/") else MISNAMED_FILE, True)
            for name in self._index.misnamed_entries()
        ]
        return problems

    def _note_problems(self, path: str, problems: list[Problem]) -> None:
        if problems:
            self._problems[path] = problems
        else:
            self._problems.pop(path, None)

    def _paths_of(self, url: str) -> tuple[str, ...]:
        paths = self._paths_by_url.get(url, ())
        return (paths,) if isinstance(paths, str) else paths

    def _set_paths(self, url: str, paths: tuple[str, ...]) -> None:
        if not paths:
            self._paths_by_url.pop(url, None)
        else:
            self._paths_by_url[url] = paths[0] if len(paths) == 1 else paths

    def _remember(self, state: FileState) -> None:
        url = state.url
        if url is not None:
            paths = self._paths_of(url)
            path = state.latest.file.path
            if path not in paths:
                self._set_paths(url, (*paths, path))

    def _forget(self, state: FileState) -> None:
        url = state.url
        if url is not None:
            path = state.latest.file.path
            self._set_paths(url, tuple(p for p in self._paths_of(url) if p != path))

    def _removal_time(self, seed: ParsedSeed) -> datetime:
        """Date a deleted file's change by its folder's mtime: the same in every worker."""
        try:
            return datetime.fromtimestamp(
                (self.seeds_dir / seed.file.path).parent.stat().st_mtime, UTC
            )
        except OSError:
            return self.clock()

    def reload(self) -> ReloadReport:
        """Bring the catalog up to date with the directory; never raises for bad content."""
        with self._lock:
            self.reloading_since = self.monotonic()
            try:
                report = self._reload_and_report()
                self.last_completed = self.monotonic()  # before the running mark goes
                return report
            finally:
                self.reloading_since = None

    def _reload_and_report(self) -> ReloadReport:
        started = self.clock()
        clock_start = time.perf_counter()
        try:
            with collector_paused():
                report = self._reload(started, clock_start)
        except OSError as error:
            reason = f"seeds directory cannot be read: {error.strerror or error}"
            report = ReloadReport(
                started, time.perf_counter() - clock_start, 0, 0, 0, 0, 0, (), False, reason
            )
            logger.error("reload failed, serving the last catalog: %s", reason)
            self._partial_scans_left = 0  # events read for this reload are lost: scan all
        self.last_report = report
        for hook in self.after_reload:
            try:
                hook(self, report)
            except Exception:  # a hook's failure must not stop reloads
                logger.exception("after-reload hook failed")
        return report

    def reuse(self, states: dict[str, FileState]) -> None:
        """Offer file states kept from an earlier process (a snapshot) to the next reload,
        which takes those of files whose path, size, mtime, inode and ctime still match."""
        self._files = states
        self._index = TreeIndex.of(state.latest.file for state in states.values())
        self._unbuilt = set(states)

    def file_states(self) -> dict[str, FileState]:
        """Every seed file's state, by path: what a snapshot keeps. Do not change it."""
        return self._files

    def seeds_served(self) -> list[ParsedSeed]:
        """What each file serves now (its last good version while a change fails), by path."""
        return [self._files[path].served for path in sorted(self._files)]

    def articles_read(self) -> list[Article]:
        """The article each file holds now, served or not (unpublished, duplicates too)."""
        articles = (state.latest.article for state in self._files.values())
        return [article for article in articles if article is not None]

    def _reload(self, started: datetime, clock_start: float) -> ReloadReport:
        try:
            root = os.stat(self.seeds_dir)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(2, "no such directory") from None
        if not stat.S_ISDIR(root.st_mode):
            raise FileNotFoundError(2, "no such directory")
        # Stat everything first, then parse, then change state: nothing below raises.
        only = self._folders_to_list()
        if only is not None and self._index.identities.get("") != (root.st_dev, root.st_ino):
            only.add("")  # the seeds folder itself was swapped: list it and what changed below
        misnamed_before = self._index.misnamed
        changes = self._index.scan(str(self.seeds_dir), only)
        now = self.clock()
        rebuilt = bool(changes or self._embargo_due(now) or self.last_report is None)
        changed = self._parse_changed(changes)  # (before, after) of each file
        changed += self._drop_removed(changes.removed)
        changed += self._take_unbuilt()
        rebuilt = rebuilt or bool(changed) or changes.misnamed != misnamed_before
        self._index.apply(changes)
        if self._watcher is not None:
            self._watcher.sync(self._index.folders, self._index.identities)
        stale, withheld = tuple(sorted(self._stale)), tuple(sorted(self._withheld))
        if rebuilt:
            self.catalog = self._next_catalog(changed, stale, now)
        report = ReloadReport(
            started=started,
            duration_seconds=time.perf_counter() - clock_start,
            files=len(self._files),
            parsed=len(changes.changed),
            unchanged=len(self._files) - len(changes.changed),
            removed=len(changes.removed),
            failed=len(self._failed),
            stale=stale,
            rebuilt=rebuilt,
            error=None,
            withheld=withheld,
        )
        self._log_report(report)
        return report

    def _embargo_due(self, now: datetime) -> bool:
        """Whether a scheduled article is due, or a shown one is dated after `now` (the clock
        was ahead when it was released, and has gone back)."""
        release = self.catalog.next_release
        return (release is not None and release <= now) or self.catalog.everything.updated > now

    def _parse_changed(self, changes: Changes) -> list[_Swap]:
        """Parse the new and changed files and keep their states; what each served before
        (None when it was not in the catalog) and serves now."""
        changed: list[_Swap] = []
        results = parse_files(self.seeds_dir, changes.changed, self.max_file_bytes)
        for seed_file, result in zip(changes.changed, results, strict=True):
            path = seed_file.path
            state = self._files.get(path)
            new_state = _next_state(state, result)
            if result.file is not seed_file:
                changes.keep(result.file)
            before = state if state is not None and path not in self._unbuilt else None
            changed.append((before, new_state))
            self._unbuilt.discard(path)
            self._files[path] = new_state
            self._note_state(path, new_state)
            if result.error is not None and new_state.good is None:
                logger.warning("%s: %s", path, self._problems[path][0].reason)
        return changed

    def _drop_removed(self, removed: list[str]) -> list[_Swap]:
        """Forget the removed files; what those in the catalog served."""
        changed: list[_Swap] = []
        for path in removed:
            state = self._files.pop(path)
            if path not in self._unbuilt:
                changed.append((state, None))
            self._unbuilt.discard(path)
            self._note_state(path, None)
        return changed

    def _take_unbuilt(self) -> list[_Swap]:
        """Files a snapshot brought and that have not changed since: into the catalog now."""
        changed: list[_Swap] = []
        for path in self._unbuilt:
            state = self._files[path]
            changed.append((None, state))
            self._note_state(path, state)
        self._unbuilt = set()
        return changed

    def _log_report(self, report: ReloadReport) -> None:
        # An idle server's reloads change nothing: their line only when debugging, but for a
        # process's first (a --preload worker's catch-up), which tells what its start cost.
        first_here, self._logged_by = self._logged_by != os.getpid(), os.getpid()
        logger.log(
            logging.INFO if report.rebuilt or first_here else logging.DEBUG,
            "reload: files=%d parsed=%d unchanged=%d removed=%d failed=%d stale=%d "
            "withheld=%d duration=%.3fs rebuilt=%s",
            report.files,
            report.parsed,
            report.unchanged,
            report.removed,
            report.failed,
            len(report.stale),
            len(report.withheld),
            report.duration_seconds,
            report.rebuilt,
        )
        for path in report.stale:
            error = self._files[path].latest.error
            logger.warning("%s: %s; serving its last good version", path, error)

    def _folders_to_list(self) -> set[str] | None:
        """The folders a reload lists again, from inotify's events; None for a full scan
        (no watcher yet in this process, an overflow, or one every FULL_SCAN_EVERY)."""
        if not self.watch or self.last_report is None:
            return None  # a start-up load (maybe in a --preload master) watches nothing
        watcher = self._watcher
        if watcher is None or not watcher.owned():
            if watcher is not None:
                watcher.close()  # broken, or this process's copy of its parent's
            self._watcher = FolderWatcher.create(str(self.seeds_dir))
            self._partial_scans_left = FULL_SCAN_EVERY
            if self._watcher is None:
                self.watch = False  # inotify is not available here: stop asking
            return None
        folders = watcher.changed_folders()
        if folders is None or self._partial_scans_left <= 0:
            # Events up to now are read and dropped: this full scan sees what they say.
            self._partial_scans_left = FULL_SCAN_EVERY
            return None
        self._partial_scans_left -= 1
        return folders

    def _note_state(self, path: str, state: FileState | None) -> None:
        """Keep the problems and the failed, stale and withheld files up to date as one
        file changes."""
        problems = seed_problems(state.served) if state else []
        if state is not None and state.withheld:
            problems = [Problem(path, f"{state.latest.error}; {WITHHELD}", True)]
        self._note_problems(path, problems)
        failed = state is not None and state.latest.error is not None
        (self._failed.add if failed else self._failed.discard)(path)
        stale = failed and state is not None and state.good is not None
        (self._stale.add if stale else self._stale.discard)(path)
        withheld = failed and not stale and state is not None and state.withheld
        (self._withheld.add if withheld else self._withheld.discard)(path)

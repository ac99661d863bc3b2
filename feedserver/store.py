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
from .change_times import file_time, note_change
from .file_problems import FileProblems
from .file_state import FileState, Swap, next_state
from .load.records import ParsedSeed, SeedFile
from .load.scan_plan import ScanPlan
from .load.seed_file import parse_seed_file
from .load.tree import Changes, TreeIndex
from .models import Article
from .url_index import UrlIndex
from .winners import choose_winner, withheld_copies

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


# Names that are not UTF-8 are shown escaped (`\xff`); see tree.unreadable_name.
MISNAMED_FILE = "file name is not valid UTF-8"
MISNAMED_FOLDER = "folder name is not valid UTF-8; nothing in it is read"


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
        # With `watch`, reloads list only the folders inotify reported (see scan_plan.py).
        self.scan_plan = ScanPlan(str(self.seeds_dir), watch)
        self.max_file_bytes = max_file_bytes
        self.site_title = site_title
        self.clock = clock
        # Reload timing and staleness go by this clock: the wall clock may be stepped
        # (NTP, an operator) and would make a reload seem an hour old, or from the future.
        self.monotonic = monotonic
        self.reloading_since: float | None = None  # when the running reload started
        self.last_completed: float | None = None  # when the last reload ended
        self._files: dict[str, FileState] = {}
        # Which files hold each webUrl, which of them is served, and the others, reported.
        self._urls = UrlIndex()
        self._winners: dict[str, ParsedSeed] = {}
        self._duplicates: dict[str, list[Problem]] = {}
        self._problems = FileProblems()
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
        changed: list[Swap],
        stale: tuple[str, ...],
        now: datetime,
    ) -> Catalog:
        """The catalog with the changed files' articles swapped, rebuilding only what they touch."""
        touched_urls, changes = self._match_changed(changed)
        gone, arrived = self._choose_winners(touched_urls)
        problems = self._all_problems(stale)
        return update_catalog(self.catalog, gone, arrived, now, problems, changes, len(self._files))

    def _match_changed(self, changed: list[Swap]) -> tuple[set[str], ChangeTimes]:
        """File the changed files under their webUrls; the URLs they touch, and when each
        collection of their articles changed."""
        touched_urls: set[str] = set()
        changes: ChangeTimes = {}
        for before, after in changed:
            if before is not None:
                self._urls.remove(before)
            if after is not None:
                self._urls.add(after)
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
        paths = self._urls.paths_of(url)
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
        problems = self._problems.listed()
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
            self.scan_plan.events_lost()  # events read for this reload are lost: scan all
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
        only = self.scan_plan.folders_to_list(first_load=self.last_report is None)
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
        self.scan_plan.follow(self._index.folders, self._index.identities)
        stale = tuple(sorted(self._problems.stale))
        withheld = tuple(sorted(self._problems.withheld))
        if rebuilt:
            self.catalog = self._next_catalog(changed, stale, now)
        report = ReloadReport(
            started=started,
            duration_seconds=time.perf_counter() - clock_start,
            files=len(self._files),
            parsed=len(changes.changed),
            unchanged=len(self._files) - len(changes.changed),
            removed=len(changes.removed),
            failed=len(self._problems.failed),
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

    def _parse_changed(self, changes: Changes) -> list[Swap]:
        """Parse the new and changed files and keep their states; what each served before
        (None when it was not in the catalog) and serves now."""
        changed: list[Swap] = []
        results = parse_files(self.seeds_dir, changes.changed, self.max_file_bytes)
        for seed_file, result in zip(changes.changed, results, strict=True):
            path = seed_file.path
            state = self._files.get(path)
            new_state = next_state(state, result)
            if result.file is not seed_file:
                changes.keep(result.file)
            before = state if state is not None and path not in self._unbuilt else None
            changed.append((before, new_state))
            self._unbuilt.discard(path)
            self._files[path] = new_state
            self._problems.note(path, new_state)
            if result.error is not None and new_state.good is None:
                logger.warning("%s: %s", path, self._problems.first_reason(path))
        return changed

    def _drop_removed(self, removed: list[str]) -> list[Swap]:
        """Forget the removed files; what those in the catalog served."""
        changed: list[Swap] = []
        for path in removed:
            state = self._files.pop(path)
            if path not in self._unbuilt:
                changed.append((state, None))
            self._unbuilt.discard(path)
            self._problems.note(path, None)
        return changed

    def _take_unbuilt(self) -> list[Swap]:
        """Files a snapshot brought and that have not changed since: into the catalog now."""
        changed: list[Swap] = []
        for path in self._unbuilt:
            state = self._files[path]
            changed.append((None, state))
            self._problems.note(path, state)
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

"""The current catalog and how it is reloaded: incremental, atomic, never losing the last good
state. Only files that are new or changed are parsed; a file that breaks keeps serving the
version that last parsed; a directory that disappears keeps the whole last catalog."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .catalog import Catalog, ChangeTimes, Problem, build_catalog, note_change
from .seeds import ParsedSeed, parse_seed_file, scan_seed_files

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class _FileState:
    signature: tuple[int, int, int]
    latest: ParsedSeed  # what the file holds now, maybe an error
    good: ParsedSeed | None  # the latest version that parsed, served while `latest` fails

    @property
    def served(self) -> ParsedSeed:
        if self.latest.error is not None and self.good is not None:
            return self.good
        return self.latest


class CatalogStore:
    """Holds the served catalog; `reload()` replaces it by one reference assignment."""

    def __init__(
        self,
        seeds_dir: str | Path,
        max_file_bytes: int,
        site_title: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.seeds_dir = Path(seeds_dir)
        self.max_file_bytes = max_file_bytes
        self.site_title = site_title
        self.clock = clock
        self._files: dict[str, _FileState] = {}
        self._removals: ChangeTimes = {}
        self._lock = threading.Lock()
        self.catalog: Catalog = build_catalog((), clock(), site_title)
        self.last_report: ReloadReport | None = None

    @property
    def degraded_reason(self) -> str | None:
        """Why the last reload could not read the directory, or None when it could."""
        return self.last_report.error if self.last_report else None

    def _note_removal(self, path: str, seed: ParsedSeed) -> None:
        """Date a deleted file's collections by its folder's mtime: the same in every worker."""
        if seed.article is None:
            return
        folder = (self.seeds_dir / path).parent
        try:
            when = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
        except OSError:
            when = self.clock()
        note_change(self._removals, seed.article, when)

    def reload(self) -> ReloadReport:
        """Bring the catalog up to date with the directory; never raises for bad content."""
        with self._lock:
            started = self.clock()
            clock_start = time.perf_counter()
            try:
                report = self._reload(started, clock_start)
            except OSError as error:
                reason = f"seeds directory cannot be read: {error.strerror or error}"
                report = ReloadReport(
                    started, time.perf_counter() - clock_start, 0, 0, 0, 0, 0, (), False, reason
                )
                logger.error("reload failed, serving the last catalog: %s", reason)
            self.last_report = report
            return report

    def _reload(self, started: datetime, clock_start: float) -> ReloadReport:
        if not self.seeds_dir.is_dir():
            raise FileNotFoundError(2, "no such directory")
        found = list(scan_seed_files(self.seeds_dir))
        parsed = 0
        files: dict[str, _FileState] = {}
        for seed_file in found:
            state = self._files.get(seed_file.path)
            if state is not None and state.signature == seed_file.signature:
                files[seed_file.path] = state
                continue
            parsed += 1
            result = parse_seed_file(self.seeds_dir, seed_file, self.max_file_bytes)
            good = result if result.error is None else (state.served if state else None)
            if good is not None and good.error is not None:
                good = None
            files[seed_file.path] = _FileState(seed_file.signature, result, good)
        removed_paths = self._files.keys() - files.keys()
        for path in removed_paths:
            self._note_removal(path, self._files[path].served)
        removed = len(removed_paths)
        now = self.clock()
        release_due = self.catalog.next_release is not None and self.catalog.next_release <= now
        rebuilt = bool(parsed or removed or release_due or self.last_report is None)
        stale = tuple(path for path, s in files.items() if s.latest.error and s.good)
        self._files = files
        if rebuilt:
            stale_problems = [
                Problem(path, f"{files[path].latest.error}; serving its last good version", False)
                for path in stale
            ]
            self.catalog = build_catalog(
                (state.served for state in files.values()),
                now,
                self.site_title,
                stale_problems,
                self._removals,
            )
        report = ReloadReport(
            started=started,
            duration_seconds=time.perf_counter() - clock_start,
            files=len(found),
            parsed=parsed,
            unchanged=len(found) - parsed,
            removed=removed,
            failed=sum(1 for s in files.values() if s.latest.error is not None),
            stale=stale,
            rebuilt=rebuilt,
            error=None,
        )
        logger.info(
            "reload: files=%d parsed=%d unchanged=%d removed=%d failed=%d stale=%d "
            "duration=%.3fs rebuilt=%s",
            report.files,
            report.parsed,
            report.unchanged,
            report.removed,
            report.failed,
            len(stale),
            report.duration_seconds,
            rebuilt,
        )
        for path in stale:
            logger.warning("%s: %s; serving its last good version", path, files[path].latest.error)
        return report

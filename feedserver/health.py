"""What /healthz says: `ok`, `degraded` or `stale`, counts for everyone, and for trusted
addresses the reasons and a capped list of problem files, summarised once per catalog."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog, Problem
from .jsontext import utc_time
from .store import CatalogStore

# Problems listed by name; the rest are only counted (100,000 bad files made 9.5 MB).
MAX_LISTED = 100
# A reload is overdue when none has completed for this many intervals (plus its duration).
STALE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class ProblemSummary:
    """A catalog's problems: the first MAX_LISTED (by file name) and the totals."""

    listed: tuple[dict[str, Any], ...]
    total: int
    files_with_errors: int
    warnings: int


def summarize(problems: Iterable[Problem]) -> ProblemSummary:
    """Count the problems and keep the first MAX_LISTED by file name."""
    problems = tuple(problems)
    first = heapq.nsmallest(MAX_LISTED, problems, key=lambda p: (p.file, p.reason))
    return ProblemSummary(
        listed=tuple({"file": p.file, "error": p.reason, "skipped": p.fatal} for p in first),
        total=len(problems),
        files_with_errors=len({p.file for p in problems if p.fatal}),
        warnings=sum(1 for p in problems if not p.fatal),
    )


class ProblemSummaries:
    """The summary of the served catalog's problems, made once per catalog, not per request.

    Keyed by the identity of the catalog's problems tuple, which is held, so an old
    catalog's articles are not kept alive by it and an identity is never reused."""

    def __init__(self) -> None:
        self.builds = 0  # how many summaries were made, for tests
        self._problems: tuple[Problem, ...] | None = None
        self._summary = summarize(())
        self._lock = threading.Lock()

    def of(self, catalog: Catalog) -> ProblemSummary:
        """The summary of this catalog's problems."""
        with self._lock:  # concurrent checks after a reload wait for one build
            if catalog.problems is not self._problems:
                self._summary = summarize(catalog.problems)
                self._problems = catalog.problems
                self.builds += 1
            return self._summary


def stale_reason(store: CatalogStore, interval_seconds: int) -> str | None:
    """Why reloads are overdue, or None: no reload has completed, and none is running that
    started, within STALE_INTERVALS intervals plus the last one's duration (a hung reload, a
    dead scheduler). Measured on the store's monotonic clock: a wall clock stepped back an
    hour must not make the last reload look current, nor one stepped ahead make it old."""
    report = store.last_report
    took = report.duration_seconds if report is not None else 0.0
    allowed = STALE_INTERVALS * interval_seconds + took
    now = store.monotonic()
    running, completed = store.reloading_since, store.last_completed
    if running is not None and now - running <= allowed:
        return None
    if completed is not None and now - completed <= allowed:
        return None
    due = f"one is due every {interval_seconds} s; the last took {took:.1f} s"
    if running is not None:
        return f"a reload has been running for {now - running:.0f} s ({due})"
    if completed is None:
        return "no reload has completed"
    return f"no reload has completed for {now - completed:.0f} s ({due})"


def health(
    store: CatalogStore,
    summaries: ProblemSummaries,
    *,
    reload_interval: int | None,
    trusted: bool,
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of /healthz. `reload_interval` is None when this process does
    not reload in the background (nothing can be overdue then)."""
    catalog = store.catalog
    report = store.last_report
    overdue = None
    if reload_interval is not None:
        overdue = stale_reason(store, reload_interval)
    reason = overdue or store.degraded_reason
    status = "stale" if overdue else "degraded" if reason else "ok"
    summary = summaries.of(catalog)
    data: dict[str, Any] = {
        "status": status,
        "articles": len(catalog.everything.articles),
        "topics": len(catalog.topics),
        "providers": len(catalog.providers),
        "last_reload": utc_time(report.started) if report else None,
        "problems": {
            "total": summary.total,
            "files_with_errors": summary.files_with_errors,
            "warnings": summary.warnings,
            "withheld": len(report.withheld) if report else 0,
            "stale": len(report.stale) if report else 0,
        },
    }
    if trusted:
        if reason:
            data["reason"] = reason
        data["errors"] = list(summary.listed)
        if report is not None:
            data["reload"] = {
                "started": utc_time(report.started),
                "duration_seconds": round(report.duration_seconds, 6),
                "files": report.files,
                "parsed": report.parsed,
                "unchanged": report.unchanged,
                "removed": report.removed,
                "failed": report.failed,
                "stale": list(report.stale[:MAX_LISTED]),
                "withheld": list(report.withheld[:MAX_LISTED]),
            }
    return (200 if status == "ok" else 503), data

"""Counting polls off the hot path: a request only appends one tuple to a bounded queue; a
background thread of each process turns the queue into metrics and audience figures and
writes them to the stats database every few seconds.

Only feeds that are served are counted (`is_served`: a feed of the catalog, or a union of
its topics or providers in its canonical spelling); a 404, a 301 or a refusal of a feed that
does not exist counts for nothing. The writes run off the event loop (blocking.py) with a
short busy timeout; counts a write could not store (the database locked, the disk full) are
kept, merged per feed and day and bounded, for the next write."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from .audience import MAX_USER_AGENT, feed_of, identify
from .blocking import off_the_loop
from .statsdb import Batch, StatsDB, StatsError

if TYPE_CHECKING:
    from .metrics import ServerMetrics

logger = logging.getLogger(__name__)

# Where the audience middleware puts the client's address (clients.py) for the recorder.
CLIENT = "feedserver.client"
# Past this many unprocessed requests (a flood between two drains), more are not counted.
MAX_PENDING = 200_000
COUNTED_STATUSES = frozenset({"200", "304"})
# Days of counts kept while the database cannot be written; older ones are given up.
MAX_BACKLOG_DAYS = 7

# (path, status, address, User-Agent, cache result, time)
Event = tuple[str, str, str, str, str, float]


def _today(moment: float) -> date:
    return datetime.fromtimestamp(moment, UTC).date()


class PollRecorder:
    """Takes note of every answered request and turns the notes into figures."""

    def __init__(
        self,
        db: StatsDB | None,
        metrics: ServerMetrics | None,
        flush_seconds: float,
        clock: Callable[[], float] = time.time,
        is_served: Callable[[str], bool] | None = None,
        error: str | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.is_served = is_served  # None: every feed path counts (tests without a catalog)
        self.dropped = 0
        self.error = error  # the stats database's last problem, for /healthz
        # Whether the tables are known to exist: a database that could not be set up at start
        # (stats_views.init_app) is tried again before each write.
        self._ready = error is None
        self._events: deque[Event] = deque()
        self._batches: dict[date, Batch] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one drain at a time (thread, exit, tests)
        os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self.flush)

    def _after_fork(self) -> None:
        # The parent's thread does not exist here, and its notes are the parent's to write.
        self._thread = None
        self._events.clear()
        self._batches.clear()
        self._lock = threading.Lock()

    def note(self, environ: dict[str, Any], status: str) -> None:
        """Record one answered request: the hot path, so only an append."""
        if self._thread is None:
            self._start()
        if len(self._events) >= MAX_PENDING:
            self.dropped += 1
            return
        self._events.append(
            (
                environ.get("PATH_INFO", ""),
                status,
                environ.get(CLIENT) or environ.get("REMOTE_ADDR", ""),
                environ.get("HTTP_USER_AGENT", ""),
                environ.get("feedserver.cache", ""),
                self.clock(),
            )
        )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                # Made here, in the serving process: an Event made before gunicorn's gevent
                # worker patched threading (with --preload, in the master) would, waited on,
                # block the worker's whole event loop.
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._run, name="polls", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        last_write = time.monotonic()
        while True:
            self._wake.wait(min(1.0, self.flush_seconds))
            self._wake.clear()
            try:
                self.drain()
                if time.monotonic() - last_write >= self.flush_seconds:
                    self.write()
                    last_write = time.monotonic()
            except Exception:  # a bug here must never stop counting for good
                logger.exception("counting polls failed")

    def flush(self) -> None:
        """Count every pending note and write it now, in this thread (at exit, and in tests)."""
        self.drain()
        self.write(in_place=True)

    def drain(self) -> None:
        """Turn the pending notes into metrics and per-day batches."""
        with self._lock:
            events = self._events
            count = len(events)
            for _ in range(count):
                self._count(*events.popleft())

    def _count(
        self, path: str, status: str, address: str, agent: str, cache: str, moment: float
    ) -> None:
        if self.metrics is not None:
            self.metrics.count_request(path, status, cache)
        if self.db is None:
            return
        feed = feed_of(path)
        if feed is None or (self.is_served is not None and not self.is_served(feed)):
            return
        batch = self._batches.setdefault(_today(moment), Batch())
        if status == "429":
            batch.limited[feed] += 1
            return
        if status not in COUNTED_STATUSES:
            return
        batch.polls[feed] += 1
        poller = identify(agent)
        if poller.is_aggregator:
            # Without a feed-id, one aggregator's subscriptions to two formats stay apart.
            subscription = poller.feed_id or path
            batch.note_report((feed, poller.aggregator, subscription), poller.subscribers, moment)
        else:
            batch.note_direct(feed, (address, agent[:MAX_USER_AGENT]))

    def write(self, in_place: bool = False) -> None:
        """Write the batches to the stats database, off the event loop (unless `in_place`);
        on failure keep serving, say why, and keep the counts for the next write."""
        with self._lock:
            batches, self._batches = self._batches, {}
        if self.db is None or not any(batches.values()):
            return
        db = self.db

        def write_all() -> tuple[dict[date, Batch], str | None]:
            return self._write_batches(db, batches)

        unwritten, error = write_all() if in_place else off_the_loop(write_all)
        if unwritten:
            self._keep(unwritten)
        if error is not None:
            if error != self.error:
                logger.error("%s; counts are kept until it can be written", error)
            self.error = error
        elif self.error is not None:
            logger.info("stats database writable again")
            self.error = None

    def _write_batches(
        self, db: StatsDB, batches: dict[date, Batch]
    ) -> tuple[dict[date, Batch], str | None]:
        """Write each day's batch; the batches not written, and why. Runs in a thread of its
        own under gevent: nothing here may touch the event loop."""
        if not self._ready:  # the tables could not be made at start: try again
            try:
                db.initialize()
            except StatsError as error:
                return batches, str(error)
            self._ready = True
        for day, batch in sorted(batches.items()):
            if batch:
                try:
                    db.write(day, batch)
                except StatsError as error:
                    return {d: b for d, b in batches.items() if d >= day}, str(error)
        return {}, None

    def _keep(self, unwritten: dict[date, Batch]) -> None:
        """Merge counts a write could not store back into the pending ones (bounded)."""
        with self._lock:
            for day, batch in unwritten.items():
                pending = self._batches.get(day)
                if pending is None:
                    self._batches[day] = batch
                else:
                    batch.merge(pending)
                    self._batches[day] = batch
            for day in sorted(self._batches)[:-MAX_BACKLOG_DAYS]:
                del self._batches[day]
                self.dropped += 1

"""The background reload: one APScheduler job per serving process.

A thread started before a fork does not exist in the child, so the scheduler is not started
when the app is built (which may be in gunicorn's master with --preload) but by the first
request each process handles (or by gunicorn's post_worker_init hook in gunicorn_hooks.py,
which `feedserver serve` and config/gunicorn.conf.py both use). A catalog loaded more than
an interval ago is brought up to date at once, in the background.

Under gunicorn's gevent worker (the standard library monkey-patched) the job is a greenlet of
the event loop, and a reload (parsing files, rebuilding collections) would hold that loop for
its whole length: there the reload itself runs in a real OS thread of gevent's thread pool,
so the loop goes on serving requests between the interpreter's switches of the GIL.

APScheduler keeps a job's next run as a wall-clock time and sleeps until then: a clock
stepped an hour back (NTP, an operator) would leave the next reload an hour away. The
scheduler here looks at the clocks at least every CLOCK_CHECK_SECONDS, and when the wall
clock has moved against the monotonic one it moves every job's next run by the same step,
so reloads keep their pace on the monotonic clock, whatever the wall clock does."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from .blocking import under_gevent
from .catalog import Catalog
from .store import CatalogStore

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


# How often, in seconds, the interpreter hands the GIL from a running reload thread to the
# event loop's thread while the reload runs. The event loop gives the GIL up at every wait for
# the network (several times per request) and must get it back each time: at Python's
# default of 5 ms a cached feed's request took up to 76 ms during a reload at 10,000 files.
RELOAD_SWITCH_INTERVAL = 0.0005


def off_the_event_loop(work: Callable[[], Result]) -> Result:
    """Run CPU-heavy work where it cannot stall serving: under gevent in a real OS thread
    (the calling greenlet waits for it, the others go on), otherwise right here."""
    if not under_gevent():
        return work()
    from gevent import get_hub

    usual = sys.getswitchinterval()
    sys.setswitchinterval(min(usual, RELOAD_SWITCH_INTERVAL))
    try:
        return get_hub().threadpool.apply(work)  # type: ignore[no-any-return]
    finally:
        sys.setswitchinterval(usual)


# The longest the scheduler sleeps without looking at the clocks, and the least difference
# between them that counts as a step (rather than the scheduler's own lateness).
CLOCK_CHECK_SECONDS = 5.0
CLOCK_STEP_SECONDS = 1.0


class ClockSteps:
    """How far the wall clock has been stepped against the monotonic one since last asked."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self._offset = wall() - monotonic()

    def step(self) -> float:
        """Seconds the wall clock jumped (ahead: positive) since the last call; 0 if none."""
        offset = self.wall() - self.monotonic()
        jumped = offset - self._offset
        if abs(jumped) < CLOCK_STEP_SECONDS:
            return 0.0
        self._offset = offset
        return jumped


def follow_clock_steps(scheduler: BaseScheduler, steps: ClockSteps) -> None:
    """Move every job's next run by the wall clock's step, if it was stepped."""
    jumped = steps.step()
    if not jumped:
        return
    logger.warning("the wall clock moved %+.0f s: reloads keep their pace", jumped)
    for job in scheduler.get_jobs():
        if job.next_run_time is not None:
            job.modify(next_run_time=job.next_run_time + timedelta(seconds=jumped))


def _steady(base: type[BaseScheduler]) -> type[BaseScheduler]:
    """An APScheduler scheduler class that follows clock steps (see the module's doc)."""

    class Steady(base):  # type: ignore[misc]
        clock_steps = ClockSteps()

        def _process_jobs(self) -> float:
            follow_clock_steps(self, self.clock_steps)
            wait: float | None = super()._process_jobs()
            return CLOCK_CHECK_SECONDS if wait is None else min(wait, CLOCK_CHECK_SECONDS)

    Steady.__name__ = f"Steady{base.__name__}"
    return Steady


def _new_scheduler(steps: ClockSteps) -> BaseScheduler:
    """A scheduler whose loop and jobs live beside the requests: greenlets under gevent
    (APScheduler's BackgroundScheduler may have been imported before the patching, and would
    then start a real thread whose job could not use the event loop), threads otherwise."""
    options: dict[str, Any] = {}
    if under_gevent():
        from apscheduler.schedulers.gevent import GeventScheduler

        base: type[BaseScheduler] = GeventScheduler
    else:
        base, options = BackgroundScheduler, {"daemon": True}
    scheduler = _steady(base)(**options)
    scheduler.clock_steps = steps
    return scheduler


class ReloadScheduler:
    """Starts, at most once per process, a job that reloads the store every interval."""

    def __init__(self, store: CatalogStore, interval_seconds: int) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self._scheduler: BaseScheduler | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        # The clocks the scheduler compares to see a step (tests set their own).
        self.wall: Callable[[], float] = time.time
        # Called in the serving process when its job starts, and after each reload that
        # produced a new catalog (with the old and the new one).
        self.on_start: list[Callable[[], object]] = []
        self.listeners: list[Callable[[Catalog, Catalog], None]] = []
        # Set in a worker whose master reloads for it (shared_reload.py): no job of its own.
        self.parent_reloads = False

    def running(self) -> bool:
        """Whether this process has a live scheduler."""
        return self._pid == os.getpid() and self._scheduler is not None

    def ensure_started(self) -> None:
        """Start the job in this process unless it already runs here."""
        if self.running() or self.parent_reloads:
            return
        with self._lock:
            if self.running():
                return
            for start in self.on_start:
                start()
            self._scheduler = _new_scheduler(ClockSteps(self.wall, self.store.monotonic))
            # A catalog inherited from a parent may be old: catch up at once, in the
            # background, so this process starts serving without waiting for it.
            first_run = datetime.now(UTC) if self._catalog_is_old() else None
            self._scheduler.add_job(
                self.reload,
                "interval",
                seconds=self.interval_seconds,
                id="reload-seeds",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=self.interval_seconds,
                **({"next_run_time": first_run} if first_run else {}),
            )
            # Build the served catalog's search index now, in the background, so that the
            # first filtered request does not wait for it; a catch-up reload due now does so
            # itself (one at a time: both hand the GIL over more often while they run).
            if first_run is None:
                self._scheduler.add_job(
                    self.prepare_search, args=(logging.INFO,), id="prepare-search"
                )
            self._scheduler.start()
            self._pid = os.getpid()
            logger.info(
                "reload scheduler started in process %d (%s)",
                self._pid,
                "gevent: reloads run in a thread of its pool" if under_gevent() else "threads",
            )

    def stop(self) -> None:
        """Stop this process's job, letting a reload under way finish on its own."""
        with self._lock:
            if not self.running() or self._scheduler is None:
                return
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
            self._pid = None

    def wake(self) -> None:
        """Have the scheduler look at its jobs and the clocks now (tests that move a clock)."""
        if self.running() and self._scheduler is not None:
            self._scheduler.wakeup()

    def _catalog_is_old(self) -> bool:
        completed = self.store.last_completed
        if completed is None:
            return True
        return self.store.monotonic() - completed >= self.interval_seconds

    def reload(self) -> None:
        """Reload the store, then tell the listeners of a new catalog; a failure is logged
        and never stops later runs."""
        try:
            before = self.store.catalog
            off_the_event_loop(self.store.reload)
            after = self.store.catalog
            if after is not before:
                for listener in self.listeners:
                    listener(before, after)
            if not after.search.ready:
                self.prepare_search()
        except Exception:
            logger.exception("reload failed; serving the last catalog")

    def prepare_search(self, level: int = logging.DEBUG) -> None:
        """Build the served catalog's search index, off the request path; logged at `level`
        (after a reload, whose own line says enough, only when debugging)."""
        catalog = self.store.catalog
        started = time.perf_counter()
        off_the_event_loop(catalog.search.prepare)
        logger.log(
            level,
            "search index ready: %d articles, %.0f KB, %.3fs",
            len(catalog.everything.articles),
            catalog.search.nbytes() / 1024,
            time.perf_counter() - started,
        )


def init_app(app: Flask, store: CatalogStore, reload_interval: int) -> ReloadScheduler:
    """Attach a reload scheduler that starts with the first request of each process."""
    scheduler = ReloadScheduler(store, reload_interval)
    app.extensions["feedserver.scheduler"] = scheduler
    app.before_request(scheduler.ensure_started)
    return scheduler


def _scheduler_of(app: object) -> ReloadScheduler | None:
    scheduler = getattr(app, "extensions", {}).get("feedserver.scheduler")
    return scheduler if isinstance(scheduler, ReloadScheduler) else None


def start_in_worker(app: object) -> None:
    """Start the reload job of a serving process now: for a server's post-fork hook."""
    scheduler = _scheduler_of(app)
    if scheduler is not None:
        scheduler.ensure_started()


def stop_in_worker(app: object) -> None:
    """Stop the reload job of a serving process that is leaving: for a worker-exit hook."""
    scheduler = _scheduler_of(app)
    if scheduler is not None:
        scheduler.stop()

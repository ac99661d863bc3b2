"""The background reload: one loop per serving process, paced by a monotonic clock.

A thread started before a fork does not exist in the child, so the loop is not started
when the app is built (which may be in gunicorn's master with --preload) but by the first
request each process handles (or by gunicorn's post_worker_init hook in gunicorn_hooks.py,
which `feedserver serve` and config/gunicorn.conf.py both use). A catalog loaded more than
an interval ago is brought up to date at once, in the background.

Under gunicorn's gevent worker (the standard library monkey-patched) the loop is a greenlet of
the event loop, and a reload (parsing files, rebuilding collections) would hold that loop for
its whole length: there the reload itself runs in a real OS thread of gevent's thread pool,
so the loop goes on serving requests between the interpreter's switches of the GIL."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask

from .catalog import Catalog
from .store import CatalogStore

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


def under_gevent() -> bool:
    """Whether this process's threads are gevent greenlets (gunicorn's gevent worker)."""
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


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


class ReloadScheduler:
    """Runs, at most once per process, a loop that reloads the store every interval.

    The loop is paced by the store's monotonic clock, never by the wall clock: a clock
    stepped an hour ahead and back (as NTP may do) would otherwise leave the next run an
    hour away, and nothing would reload meanwhile. Its waits (threading.Event, and gevent's
    timers under gevent) are monotonic as well."""

    def __init__(self, store: CatalogStore, interval_seconds: int) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self._thread: threading.Thread | None = None
        self._wake: threading.Event | None = None
        self._stopped = False
        self._due = 0.0  # on the monotonic clock: when the next reload starts
        self._pid: int | None = None
        self._lock = threading.Lock()
        # Called in the serving process when its job starts, and after each reload that
        # produced a new catalog (with the old and the new one).
        self.on_start: list[Callable[[], object]] = []
        self.listeners: list[Callable[[Catalog, Catalog], None]] = []

    def running(self) -> bool:
        """Whether this process has a live reload loop."""
        return self._pid == os.getpid() and self._thread is not None

    def ensure_started(self) -> None:
        """Start the loop in this process unless it already runs here."""
        if self.running():
            return
        with self._lock:
            if self.running():
                return
            for start in self.on_start:
                start()
            # Made here, in the serving process: under gevent, an Event or a thread made
            # before the worker patched threading (in a --preload master) would block the
            # whole event loop, or run outside it.
            self._wake = threading.Event()
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="reload-seeds", daemon=True)
            self._pid = os.getpid()
            self._thread.start()
            logger.info(
                "reload scheduler started in process %d (%s)",
                self._pid,
                "gevent: reloads run in a thread of its pool" if under_gevent() else "threads",
            )

    def wake(self) -> None:
        """Have the loop look at the clock again now (a stop, or a test's moved clock)."""
        if self._wake is not None:
            self._wake.set()

    def stop(self) -> None:
        """End this process's loop after the reload it may be running."""
        self._stopped = True
        self.wake()

    def _run(self) -> None:
        # A catalog inherited from a parent may be old: catch up at once, so this process
        # starts serving without waiting for it. Otherwise build the served catalog's search
        # index now, so that the first filtered request does not wait for it.
        if self._catalog_is_old():
            self._due = self.store.monotonic()
        else:
            self._due = self.store.monotonic() + self.interval_seconds
            self._guarded(self.prepare_search)
        wake = self._wake
        assert wake is not None
        while not self._stopped:
            delay = self._due - self.store.monotonic()
            if delay > 0:
                wake.wait(delay)
                wake.clear()
                continue
            # Paced from each start; a reload that overran the interval is not run twice.
            self._due = self.store.monotonic() + self.interval_seconds
            self._guarded(self.reload)

    @staticmethod
    def _guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # a bug must never stop reloads for good
            logger.exception("reload job failed")

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

    def prepare_search(self) -> None:
        """Build the served catalog's search index, off the request path."""
        catalog = self.store.catalog
        started = time.perf_counter()
        off_the_event_loop(catalog.search.prepare)
        logger.info(
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


def start_in_worker(app: object) -> None:
    """Start the reload job of a serving process now: for a server's post-fork hook."""
    extensions = getattr(app, "extensions", {})
    scheduler = extensions.get("feedserver.scheduler")
    if isinstance(scheduler, ReloadScheduler):
        scheduler.ensure_started()

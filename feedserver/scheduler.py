"""The background reload: one APScheduler job per serving process.

A thread started before a fork does not exist in the child, so the scheduler is not started
when the app is built (which may be in gunicorn's master with --preload) but by the first
request each process handles (or by gunicorn's post_worker_init hook, in
config/gunicorn.conf.py). A catalog loaded more than an interval ago is brought up to date at
once, in the background."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from .catalog import Catalog
from .store import CatalogStore

logger = logging.getLogger(__name__)


class ReloadScheduler:
    """Starts, at most once per process, a job that reloads the store every interval."""

    def __init__(self, store: CatalogStore, interval_seconds: int) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self._scheduler: BackgroundScheduler | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        # Called in the serving process when its job starts, and after each reload that
        # produced a new catalog (with the old and the new one).
        self.on_start: list[Callable[[], None]] = []
        self.listeners: list[Callable[[Catalog, Catalog], None]] = []

    def running(self) -> bool:
        """Whether this process has a live scheduler."""
        return self._pid == os.getpid() and self._scheduler is not None

    def ensure_started(self) -> None:
        """Start the job in this process unless it already runs here."""
        if self.running():
            return
        with self._lock:
            if self.running():
                return
            for start in self.on_start:
                start()
            self._scheduler = BackgroundScheduler(daemon=True)
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
            # first filtered request does not wait for it (reload() does so for later ones).
            self._scheduler.add_job(self.prepare_search, id="prepare-search")
            self._scheduler.start()
            self._pid = os.getpid()
            logger.info("reload scheduler started in process %d", self._pid)

    def _catalog_is_old(self) -> bool:
        report = self.store.last_report
        if report is None:
            return True
        age = (self.store.clock() - report.started).total_seconds()
        return age >= self.interval_seconds

    def reload(self) -> None:
        """Reload the store, then tell the listeners of a new catalog; a failure is logged
        and never stops later runs."""
        try:
            before = self.store.catalog
            self.store.reload()
            after = self.store.catalog
            if after is not before:
                for listener in self.listeners:
                    listener(before, after)
                self.prepare_search()
        except Exception:
            logger.exception("reload failed; serving the last catalog")

    def prepare_search(self) -> None:
        """Build the served catalog's search index, off the request path."""
        catalog = self.store.catalog
        started = time.perf_counter()
        catalog.search.prepare()
        logger.info(
            "search index ready: %d articles, %.0f KB, %.3fs",
            len(catalog.everything.articles),
            catalog.search.nbytes() / 1024,
            time.perf_counter() - started,
        )


def init_app(app: Flask, store: CatalogStore) -> ReloadScheduler:
    """Attach a reload scheduler that starts with the first request of each process."""
    scheduler = ReloadScheduler(store, int(app.config["FEEDSERVER"]["reload_interval"]))
    app.extensions["feedserver.scheduler"] = scheduler
    app.before_request(scheduler.ensure_started)
    return scheduler


def start_in_worker(app: object) -> None:
    """Start the reload job of a serving process now: for a server's post-fork hook."""
    extensions = getattr(app, "extensions", {})
    scheduler = extensions.get("feedserver.scheduler")
    if isinstance(scheduler, ReloadScheduler):
        scheduler.ensure_started()

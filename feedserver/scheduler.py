"""The background reload: one APScheduler job per serving process.

A thread started before a fork does not exist in the child, so the scheduler is not started
when the app is built (which may be in gunicorn's master with --preload) but by the first
request each process handles; that request also brings the catalog up to date first if it
was loaded more than an interval ago."""

from __future__ import annotations

import logging
import os
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

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
            if self._catalog_is_old():
                self.reload()
            self._scheduler = BackgroundScheduler(daemon=True)
            self._scheduler.add_job(
                self.reload,
                "interval",
                seconds=self.interval_seconds,
                id="reload-seeds",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=self.interval_seconds,
            )
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
        """Reload the store; a failure is logged and never stops later runs."""
        try:
            self.store.reload()
        except Exception:
            logger.exception("reload failed; serving the last catalog")

    def shutdown(self) -> None:
        """Stop this process's job, if it runs."""
        if self.running() and self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None


def init_app(app: Flask, store: CatalogStore) -> ReloadScheduler:
    """Attach a reload scheduler that starts with the first request of each process."""
    scheduler = ReloadScheduler(store, int(app.config["FEEDSERVER"]["reload_interval"]))
    app.extensions["feedserver.scheduler"] = scheduler
    app.before_request(scheduler.ensure_started)
    return scheduler

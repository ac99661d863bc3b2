"""gunicorn server hooks, shared by `feedserver serve` and config/gunicorn.conf.py.

Imports nothing of the app at module level: the metrics folder must be chosen (in the
master, before any worker exists) before prometheus_client is imported anywhere."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Combined log format plus the response time in milliseconds, whether the rendered response
# came from the cache, and the feed it served (all, topic:<slug>, provider:<key>, or -).
ACCESS_LOG_FORMAT = (
    '%(h)s - - %(t)s "%(r)s" %(s)s %(B)s "%(f)s" "%(a)s" '
    "%(M)sms cache=%({feedserver.cache}e)s feed=%({feedserver.feed}e)s"
)
_created: list[str] = []


def prepare_metrics_dir() -> str:
    """Choose this server's metrics folder (unless the operator set one), for its workers."""
    directory = os.environ.get(METRICS_ENV)
    if not directory:
        directory = tempfile.mkdtemp(prefix="feedserver-metrics-")
        os.environ[METRICS_ENV] = directory
        _created.append(directory)
    return directory


def on_starting(server: Any) -> None:
    """In the master, at start: stop the server with one line for a bad setting or a missing
    seeds directory, before any worker forks; then an empty metrics folder, so old servers'
    counts do not add up."""
    from .config import StartupError, check_seeds_dir, load_config
    from .metrics import clean_multiprocess_dir

    try:
        check_seeds_dir(load_config()["seeds_dir"])
    except StartupError as error:
        sys.exit(f"feedserver: {error}")

    clean_multiprocess_dir(prepare_metrics_dir())


def post_worker_init(worker: Any) -> None:
    """Start the worker's reload job (and WebSub publishing) as soon as the worker is up."""
    from .scheduler import start_in_worker

    start_in_worker(worker.wsgi)


def child_exit(server: Any, worker: Any) -> None:
    """Forget a dead worker's live gauges."""
    from .metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder this server made for itself."""
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)

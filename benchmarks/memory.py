"""Resident memory of a serving process, above that of an idle Flask process.

Both run in fresh processes (see fresh.py) and read their own VmRSS from /proc/self/status
after serving one request and a full garbage collection:
- serving: `create_app` over the seed tree, then one request for the biggest topic's feed;
- idle: the same modules imported (Flask, feedgen, PyYAML, feedserver with its
  statistics views and prometheus_client), a one-route Flask app, one request.
"""

from __future__ import annotations

import gc
from typing import Any

from .flat import BASE_URL, biggest_topic


def status_kib(field: str, pid: int | str = "self") -> int:
    """A size field (VmRSS, VmHWM, ...) of /proc/<pid>/status, in KiB; 0 when absent."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _figures() -> dict[str, int]:
    gc.collect()
    return {"rss": status_kib("VmRSS") * 1024, "peak": status_kib("VmHWM") * 1024}


def serving_rss(root: str, cache_dir: str = "") -> dict[str, Any]:
    """RSS of a process that loaded the tree with create_app and served one feed; with a
    `cache_dir` holding a snapshot, the load is a restart's."""
    from feedserver import create_app

    # Polite polling off: counted polls are shared between processes through the stats
    # database, and this process's one request may repeat an earlier process's.
    app = create_app(
        {"seeds_dir": root, "base_url": BASE_URL, "cache_dir": cache_dir, "polite_polling": False}
    )
    # A serving process freezes what it loaded (gunicorn_hooks.serving_app; create_app does
    # not): measured here as served, so the figure is a worker's.
    gc.freeze()
    response = app.test_client().get(f"/topics/{biggest_topic(app)}.rss")
    if response.status_code != 200:
        raise RuntimeError(f"feed answered {response.status_code}")
    return _figures()


def idle_rss() -> dict[str, Any]:
    """RSS of a process with the same imports and a trivial Flask app after one request."""
    from flask import Flask

    import feedserver.render
    import feedserver.stats_views
    import feedserver.web  # noqa: F401

    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "ok")
    if app.test_client().get("/").status_code != 200:
        raise RuntimeError("idle app did not answer")
    return _figures()

"""Serving a cached feed under gunicorn, against a bare Flask app answering the same bytes.

Both run under the same gunicorn settings (`-w 2 --preload`, see servers.COMMON_OPTIONS) and
the same load (wrk, or the Python generator with the same connections). The feed server reloads
every hour here, so no background reload falls inside a measurement. The two are loaded in
turn, `rounds` times each, and the best run of each is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import loadgen, servers

WORKERS = 2
BASE_URL = "http://feeds.bench"


@dataclass(frozen=True, slots=True)
class Serving:
    """The best load run of the feed server and of the bare app."""

    path: str
    body_bytes: int
    feed: loadgen.Load
    bare: loadgen.Load
    uncounted: loadgen.Load  # the feed server with subscriber counting off (no stats_db)
    tool: str


def _biggest_topic_path(port: int) -> str:
    status, _, body = servers.get(port, "/topics.json")
    if status != 200:
        raise RuntimeError(f"/topics.json answered {status}")
    topics = json.loads(body)
    biggest = min(topics, key=lambda t: (-t["count"], t["slug"]))
    return f"/topics/{biggest['slug']}.rss"


def measure(
    seeds: Path,
    logs: Path,
    connections: int = 16,
    threads: int = 2,
    seconds: float = 5.0,
    rounds: int = 3,
    tool: str = "auto",
) -> Serving:
    """Start both servers, load each in turn, and stop them."""
    options = ("--workers", str(WORKERS), "--preload")
    settings = {
        "FEEDSERVER_SEEDS_DIR": str(seeds),
        "FEEDSERVER_BASE_URL": BASE_URL,
        "FEEDSERVER_RELOAD_INTERVAL": "3600",
    }
    feed = servers.start("wsgi:app", logs, *options, env=settings)
    uncounted = servers.start(
        "wsgi:app", logs, *options, env={**settings, "FEEDSERVER_STATS_DB": ""}
    )
    bare = None
    try:
        feed.wait_ready()
        uncounted.wait_ready()
        path = _biggest_topic_path(feed.port)
        status, headers, body = servers.get(feed.port, path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        body_file = logs / "bare-body.bin"
        body_file.write_bytes(body)
        bare = servers.start(
            "benchmarks.bare_app:app",
            logs,
            *options,
            env={"BENCH_BODY_FILE": str(body_file), "BENCH_CONTENT_TYPE": headers["Content-Type"]},
        )
        bare.wait_ready("/")
        _, bare_headers, bare_body = servers.get(bare.port, path)
        if hashlib.sha256(bare_body).digest() != hashlib.sha256(body).digest():
            raise RuntimeError("the bare app does not answer the feed's bytes")
        if bare_headers["Content-Type"] != headers["Content-Type"]:
            raise RuntimeError("the bare app does not answer the feed's content type")
        feed_url = f"http://{servers.HOST}:{feed.port}{path}"
        bare_url = f"http://{servers.HOST}:{bare.port}{path}"
        uncounted_url = f"http://{servers.HOST}:{uncounted.port}{path}"
        # Warm up: every worker renders (feed) and every code path runs once.
        for url in (feed_url, bare_url, uncounted_url):
            loadgen.run(url, connections, threads, 1, tool)
        feed_runs, bare_runs, uncounted_runs = [], [], []
        for _ in range(rounds):
            feed_runs.append(loadgen.run(feed_url, connections, threads, seconds, tool))
            bare_runs.append(loadgen.run(bare_url, connections, threads, seconds, tool))
            uncounted_runs.append(loadgen.run(uncounted_url, connections, threads, seconds, tool))
    finally:
        feed.stop()
        uncounted.stop()
        if bare is not None:
            bare.stop()

    def best(runs: list[loadgen.Load]) -> loadgen.Load:
        return max(runs, key=lambda load: load.requests_per_second)

    best_feed = best(feed_runs)
    return Serving(
        path, len(body), best_feed, best(bare_runs), best(uncounted_runs), best_feed.tool
    )

"""/healthz over a seeds directory of many broken files: what one call costs, and what checks
running beside readers cost the readers of a cached feed. Side by side in one process.

    python -m benchmarks.health [--files 100000] [--calls 200] [--checkers 6]

Prints the size of a trusted and of an untrusted /healthz answer, the median time of a
/healthz call against the median of a cached feed call, and the mean cached-feed time while
`--checkers` threads call /healthz in a loop against the same without them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from feedserver import create_app

BROKEN = "---\ntitle: [unclosed\n---\n"
GOOD = (
    "---\ntitle: A good article\nwebUrl: https://example.com/good\n"
    "publishedDateTime: 2024-01-01T00:00:00Z\npublished: true\nexcerpt: Fine.\n"
    "provider: {name: Example, domain: example.com}\ntopics: [Benchmarks]\n---\n"
)


def _caller(app: Any, path: str, remote_addr: str) -> Callable[[], bytes]:
    environ = EnvironBuilder(
        path=path, base_url="http://feeds.bench", environ_base={"REMOTE_ADDR": remote_addr}
    ).get_environ()

    def call() -> bytes:
        chunks = app(dict(environ), lambda status, headers, exc_info=None: None)
        try:
            return b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()

    return call


def _mean_seconds(call: Callable[[], object], times: int) -> float:
    """Mean time per call over a run: the figure that shows time lost waiting for the GIL
    (most single calls fit between two switches, so a median hides it)."""
    started = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - started) / times


def _median_seconds(call: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(files: int, calls: int, checkers: int) -> dict[str, Any]:
    """Run the measurement over `files` broken files and one good one."""
    with tempfile.TemporaryDirectory(prefix="feedserver-health-") as folder:
        seeds = Path(folder)
        (seeds / "good.txt").write_text(GOOD, encoding="utf-8")
        for n in range(files):
            (seeds / f"broken-{n:06d}.txt").write_text(BROKEN, encoding="utf-8")
        app = create_app(
            {"seeds_dir": str(seeds), "base_url": "http://feeds.bench", "stats_db": ""}
        )
    health = _caller(app, "/healthz", "127.0.0.1")
    public = _caller(app, "/healthz", "203.0.113.9")
    feed = _caller(app, "/feed.rss", "203.0.113.9")
    started = time.perf_counter()
    trusted_body = health()  # the first call summarises the catalog's problems
    first_call = time.perf_counter() - started
    feed()  # rendered once, then cached
    result: dict[str, Any] = {
        "files": files,
        "problems": len(app.extensions["feedserver.store"].catalog.problems),
        "trusted_bytes": len(trusted_body),
        "untrusted_bytes": len(public()),
        "first_healthz_s": first_call,
        "healthz_median_s": _median_seconds(health, calls),
        "cached_feed_median_s": _median_seconds(feed, calls),
    }
    result["healthz_vs_feed"] = result["healthz_median_s"] / result["cached_feed_median_s"]
    quiet = _mean_seconds(feed, calls * 100)
    stop = threading.Event()
    checks = [0] * checkers

    def check_in_a_loop(index: int) -> None:
        while not stop.is_set():
            health()
            checks[index] += 1

    threads = [threading.Thread(target=check_in_a_loop, args=(i,)) for i in range(checkers)]
    for thread in threads:
        thread.start()
    try:
        busy = _mean_seconds(feed, calls * 100)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    result.update(
        checkers=checkers,
        checks_during_run=sum(checks),
        feed_quiet_mean_s=quiet,
        feed_beside_checks_mean_s=busy,
        feed_slowdown=busy / quiet,
    )
    return result


def main() -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.health", description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--checkers", type=int, default=6)
    args = parser.parse_args()
    print(json.dumps(measure(args.files, args.calls, args.checkers), indent=2))


if __name__ == "__main__":
    main()

"""Flat cost: how long a topic feed takes to answer, cached and uncached, measured in-process.

Each request is one call of the app's WSGI entry point, `app(environ, start_response)`, the
call gunicorn makes, with the body joined and closed: no network, no gunicorn and no test
client, so the figure is the app's own time per request and nothing else. The app is made by
`create_app` without background reloads, in a process pinned to one CPU.

A render is forced by putting a copy of the current catalog in place, as a reload does: the
render cache keeps responses for one catalog object only, so it starts empty.
"""

from __future__ import annotations

import copy
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .fresh import REPO_ROOT, clean_environment

BASE_URL = "http://feeds.bench"


def biggest_topic(app: Any) -> str:
    """The key of the topic with the most served articles (ties by key)."""
    topics = app.extensions["feedserver.store"].catalog.topics.values()
    return str(min(topics, key=lambda c: (-len(c.articles), c.key)).key)


def pin_to_one_cpu() -> None:
    """Keep this process on one CPU (the last one it may use).

    A request answered from the cache takes a few microseconds, and an unpinned process
    settles, for its whole life, into a quick or a slow mode about 1.6 times apart (moves
    between CPUs, it seems); pinned, runs agree within a few percent.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def environ_for(path: str) -> dict[str, Any]:
    """A plain GET request's WSGI environ, as gunicorn would pass it (no Accept-Encoding)."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(app: Any, template: dict[str, Any]) -> tuple[float, float, str, int]:
    """One request: wall-clock and CPU seconds, the status line, the body's length."""
    environ = dict(template, **{"wsgi.input": io.BytesIO()})
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)
        return lambda data: None

    cpu = time.thread_time()
    started = time.perf_counter()
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    elapsed = time.perf_counter() - started
    return elapsed, time.thread_time() - cpu, status[0], len(body)


class FeedTimer:
    """An app over one seed tree, timing its biggest topic's RSS feed."""

    def __init__(self, root: str) -> None:
        from feedserver import create_app

        pin_to_one_cpu()
        # The timer asks the same feed again and again, on purpose: no 429 for polling too often.
        self.app = create_app({"seeds_dir": root, "base_url": BASE_URL, "polite_polling": False})
        gc.freeze()  # as a serving process does once loaded (gunicorn_hooks.serving_app)
        self.path = f"/topics/{biggest_topic(self.app)}.rss"
        self.template = environ_for(self.path)
        self.first, _, status, self.size = call(self.app, self.template)
        if not status.startswith("200"):
            raise RuntimeError(f"{self.path} answered {status}")
        self.cached: list[tuple[float, float]] = []

    def renders(self, count: int) -> list[tuple[float, float]]:
        """Wall and CPU seconds of renders, each after a new catalog emptied the cache."""
        store = self.app.extensions["feedserver.store"]
        timings = []
        for _ in range(count):
            store.catalog = copy.copy(store.catalog)
            timings.append(call(self.app, self.template)[:2])
        return timings

    def batch(self, count: int) -> None:
        """Time count requests answered from the cache, keeping the timings."""
        self.cached += [call(self.app, self.template)[:2] for _ in range(count)]

    def summary(self, renders: list[tuple[float, float]]) -> dict[str, Any]:
        """Every figure, as JSON-ready numbers."""
        entries = self.app.test_client().get(self.path).get_data().count(b"<item>")
        cached = sorted(wall for wall, _ in self.cached)
        return {
            "path": self.path,
            "bytes": self.size,
            "entries": entries,
            "requests": len(cached),
            "renders": len(renders),
            "first": self.first,
            "render_median": statistics.median(wall for wall, _ in renders),
            "render_cpu_median": statistics.median(cpu for _, cpu in renders),
            "render_max": max(wall for wall, _ in renders),
            "cached_median": statistics.median(cached),
            "cached_cpu_median": statistics.median(cpu for _, cpu in self.cached),
            "cached_p99": cached[int(len(cached) * 0.99) - 1],
            "cached_max": cached[-1],
        }


def feed_latency(root: str, requests: int = 20_000, renders: int = 30) -> dict[str, Any]:
    """Every figure of one tree in this process: first render, renders, cached requests."""
    timer = FeedTimer(root)
    timings = timer.renders(renders)
    timer.batch(requests)
    gc.collect()
    return timer.summary(timings)


def side_by_side(
    roots: list[str], batches: int = 20, batch: int = 1000, renders: int = 30
) -> list[dict[str, Any]]:
    """The figures of several trees, each in its own fresh process, the processes taking
    turns: `batches` times, each answers `batch` cached requests while the others wait.

    A cached answer takes microseconds, and the machine's speed drifts over seconds (other
    processes, other virtual machines); taking turns every few milliseconds lets every tree
    see the same drift, so their ratio holds even when the machine is busy.
    """
    return take_turns([["benchmarks.flat", root, str(renders)] for root in roots], batches, batch)


def take_turns(commands: list[list[str]], batches: int, batch: int) -> list[dict[str, Any]]:
    """Run `python -m COMMAND...` children that speak the batch protocol (ready, `batch N`
    -> ok, `done` -> a JSON line), letting them take turns; their results in order."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=REPO_ROOT,
            env=clean_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for command in commands
    ]
    try:
        for child in children:
            _expect(child, "ready")
        for _ in range(batches):
            for child in children:
                _send(child, f"batch {batch}")
                _expect(child, "ok")
        results = []
        for child in children:
            _send(child, "done")
            results.append(json.loads(_expect(child, "{")))
        return results
    finally:
        for child in children:
            child.kill()
            child.wait()


def _send(child: subprocess.Popen[str], line: str) -> None:
    assert child.stdin is not None
    child.stdin.write(line + "\n")
    child.stdin.flush()


def _expect(child: subprocess.Popen[str], start: str) -> str:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith(start):
        raise RuntimeError(f"feed timer said {line!r}, not {start!r}...")
    return line


def main() -> None:
    """Child side of side_by_side: load, render, then answer batches until told `done`."""
    root, renders = sys.argv[1], int(sys.argv[2])
    timer = FeedTimer(root)
    timings = timer.renders(renders)
    answer_turns(timer.batch, lambda: timer.summary(timings))


def answer_turns(batch: Callable[[int], None], summary: Callable[[], Any]) -> None:
    """Child side of take_turns: say ready, run `batch N` when told, print the summary as
    JSON when told `done`."""
    gc.collect()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "batch":
            batch(int(command[1]))
            print("ok", flush=True)
        elif command[0] == "done":
            print(json.dumps(summary()), flush=True)
            return


if __name__ == "__main__":
    main()

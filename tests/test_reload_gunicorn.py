"""The reload job under a real gunicorn: two workers, a one-second interval, every worker
serving each change within two intervals."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest

from .conftest import GunicornServer

INTERVAL = 1
# Two intervals, plus a second for a loaded CI machine.
DEADLINE = 2 * INTERVAL + 1.0
REQUESTS = 12  # each on a new connection, so both workers answer some of them


def feed_urls(server: GunicornServer) -> list[set[str]]:
    """The article URLs of /feed.rss, fetched REQUESTS times on fresh connections."""
    seen = []
    for _ in range(REQUESTS):
        status, _, body = server.fetch("/feed.rss")
        assert status == 200
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        seen.append({entry.link for entry in parsed.entries})
    return seen


def settle(check: Callable[[], bool]) -> float:
    """Seconds until check() holds, failing after DEADLINE."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > DEADLINE:
            pytest.fail(f"not served by every worker within {DEADLINE} s")
        time.sleep(0.1)
    return time.monotonic() - start


def every_worker_has(server: GunicornServer, url: str, present: bool = True) -> bool:
    return all((url in urls) == present for urls in feed_urls(server))


def healthz(server: GunicornServer) -> dict[str, object]:
    status, _, body = server.fetch("/healthz")
    assert status == 200
    data: dict[str, object] = json.loads(body)
    return data


def named_as_stale(server: GunicornServer, name: str) -> bool:
    """Whether /healthz names the file as stale and lists its error, on any one answer."""
    data = healthz(server)
    stale = name in data["reload"]["stale"]  # type: ignore[index]
    listed = any(e["file"] == name for e in data["errors"])  # type: ignore[attr-defined]
    return stale and listed


def touch_later(path: Path, seconds: int) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 10**9))


GUNICORN_CONF = str(Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py")


@pytest.mark.parametrize(
    "args",
    [(), ("--preload",), ("-c", GUNICORN_CONF), ("-c", GUNICORN_CONF, "--preload")],
    ids=["workers-load", "preload", "gevent", "gevent-preload"],
)
def test_every_worker_serves_each_change_within_two_intervals(
    args: tuple[str, ...],
    tmp_path: Path,
    start_gunicorn: Callable[..., GunicornServer],
    write_seed: Callable[..., Path],
    tmp_seeds: Path,
) -> None:
    write_seed("first.txt")
    server = start_gunicorn(tmp_seeds, *args, env={"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL)})
    feed_urls(server)  # every worker has started its reload job

    new = "https://example.com/articles/second"
    write_seed("second.txt")
    settle(lambda: every_worker_has(server, new))

    write_seed("second.txt", published=False)
    touch_later(tmp_seeds / "second.txt", 5)
    settle(lambda: every_worker_has(server, new, present=False))

    # A half-written save keeps the last good version, named as stale.
    write_seed("second.txt")
    touch_later(tmp_seeds / "second.txt", 10)
    settle(lambda: every_worker_has(server, new))
    half_written = "---\npublished: true\ntitle: [half written\n"  # still says published
    (tmp_seeds / "second.txt").write_text(half_written, encoding="utf-8")
    touch_later(tmp_seeds / "second.txt", 15)
    settle(lambda: all(named_as_stale(server, "second.txt") for _ in range(REQUESTS)))
    assert every_worker_has(server, new)

    (tmp_seeds / "second.txt").unlink()
    settle(lambda: every_worker_has(server, new, present=False))

    # The whole directory gone: keep serving, say degraded, recover when it is back.
    moved = tmp_seeds.with_name("moved-away")
    tmp_seeds.rename(moved)
    settle(lambda: healthz(server)["status"] == "degraded")
    assert every_worker_has(server, "https://example.com/articles/first")
    moved.rename(tmp_seeds)
    settle(lambda: all(healthz(server)["status"] == "ok" for _ in range(REQUESTS)))
    assert every_worker_has(server, "https://example.com/articles/first")
    assert "Traceback" not in server.output()


def test_preload_parses_the_directory_once(
    start_gunicorn: Callable[..., GunicornServer],
    write_seed: Callable[..., Path],
    tmp_seeds: Path,
) -> None:
    for n in range(5):
        write_seed(f"{n}.txt")
    server = start_gunicorn(tmp_seeds, "--preload", workers=3)
    feed_urls(server)
    log = server.output()
    full_loads = [line for line in log.splitlines() if "reload:" in line and "parsed=5" in line]
    assert len(full_loads) == 1, log

"""The reload job under a real gunicorn: two workers, a one-second interval, and every worker
serving each change.

Each check waits, with a generous deadline, until every worker's latest answer shows the
change; gunicorn's access log (`%(p)s`) says which worker answered which numbered request,
so no worker is taken for granted. How fast a change arrives is a figure for the benchmarks,
not an assertion here: these tests must pass on a loaded machine."""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest

from .conftest import GunicornServer

INTERVAL = 1
# How long a change may take to reach every worker before the test fails: generous, since a
# loaded machine may run a one-second reload job many seconds late.
DEADLINE = 90.0
ACCESS_LOG = ("--access-logfile", "-", "--access-logformat", "answered %(p)s %(q)s")
_ANSWERED = re.compile(r"answered <(\d+)> probe=(\d+)")
_BOOTED = re.compile(r"Booting worker with pid: (\d+)")
_EXITED = re.compile(r"Worker exiting \(pid: (\d+)\)")
_numbers = itertools.count(1)

Check = Callable[[int, bytes], bool]


WORKERS = 2  # what start_gunicorn starts unless told otherwise


def live_workers(server: GunicornServer) -> set[str]:
    """The pids of the workers gunicorn booted and that have not exited."""
    log = server.output()
    return set(_BOOTED.findall(log)) - set(_EXITED.findall(log))


def wait_for_workers(server: GunicornServer, count: int, deadline: float = 60.0) -> None:
    """Wait until `count` workers have booted: the first may answer requests before the
    others have said so in the log, and every_worker asks only the live ones."""
    stop = time.monotonic() + deadline
    while len(live_workers(server)) < count:
        assert time.monotonic() < stop, f"{count} workers did not boot within {deadline} s"
        time.sleep(0.1)


def every_worker(server: GunicornServer, path: str, check: Check) -> None:
    """Wait until the latest answer of every live worker to GET path passes check(status,
    body); fail after DEADLINE, saying which workers did not."""
    latest: dict[str, tuple[int, bool]] = {}  # worker pid: (request number, passed)
    sent: dict[str, bool] = {}  # request number: passed, until the log names its worker
    deadline = time.monotonic() + DEADLINE
    while True:
        number = str(next(_numbers))
        separator = "&" if "?" in path else "?"
        status, _, body = server.fetch(f"{path}{separator}probe={number}", timeout=30)
        sent[number] = check(status, body)
        for pid, answered in _ANSWERED.findall(server.output()):
            if answered in sent:
                passed = sent.pop(answered)
                if int(answered) > latest.get(pid, (0, False))[0]:
                    latest[pid] = (int(answered), passed)
        workers = live_workers(server)
        if workers and all(latest.get(pid, (0, False))[1] for pid in workers):
            return
        if time.monotonic() > deadline:
            behind = sorted(pid for pid in workers if not latest.get(pid, (0, False))[1])
            pytest.fail(f"{path}: workers {behind} did not pass within {DEADLINE} s")
        time.sleep(0.1)


def feed_has(url: str, present: bool = True) -> Check:
    """A check that /feed.rss is a valid feed that lists url (or does not)."""

    def check(status: int, body: bytes) -> bool:
        assert status == 200
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        return (url in {entry.link for entry in parsed.entries}) == present

    return check


def health_says(test: Callable[[int, dict[str, object]], bool]) -> Check:
    """A check of /healthz's status code and JSON body."""

    def check(status: int, body: bytes) -> bool:
        return test(status, json.loads(body))

    return check


def named_as_stale(name: str) -> Check:
    """Whether /healthz names the file as stale and lists its error."""

    def test(status: int, data: dict[str, object]) -> bool:
        stale = name in data["reload"]["stale"]  # type: ignore[index]
        listed = any(e["file"] == name for e in data["errors"])  # type: ignore[attr-defined]
        return status == 200 and stale and listed

    return health_says(test)


def touch_later(path: Path, seconds: int) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 10**9))


# The master reloads for its workers and replaces them after each change.
GUNICORN_CONF = str(Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--preload",),
        ("-c", GUNICORN_CONF),
    ],
    ids=["workers-load", "preload", "gevent-shared"],
)
def test_every_worker_serves_each_change(
    args: tuple[str, ...],
    start_gunicorn: Callable[..., GunicornServer],
    write_seed: Callable[..., Path],
    tmp_seeds: Path,
) -> None:
    write_seed("first.txt")
    server = start_gunicorn(
        tmp_seeds, *args, *ACCESS_LOG, env={"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL)}
    )
    first = "https://example.com/articles/first"
    new = "https://example.com/articles/second"
    wait_for_workers(server, WORKERS)
    every_worker(server, "/feed.rss", feed_has(first))  # every worker is up and serving

    write_seed("second.txt")
    every_worker(server, "/feed.rss", feed_has(new))

    write_seed("second.txt", published=False)
    touch_later(tmp_seeds / "second.txt", 5)
    every_worker(server, "/feed.rss", feed_has(new, present=False))

    # A half-written save that still says `published: true` keeps the last good version,
    # named as stale.
    write_seed("second.txt")
    touch_later(tmp_seeds / "second.txt", 10)
    every_worker(server, "/feed.rss", feed_has(new))
    half_written = "---\npublished: true\ntitle: [half written\n"
    (tmp_seeds / "second.txt").write_text(half_written, encoding="utf-8")
    touch_later(tmp_seeds / "second.txt", 15)
    every_worker(server, "/healthz", named_as_stale("second.txt"))
    every_worker(server, "/feed.rss", feed_has(new))

    (tmp_seeds / "second.txt").unlink()
    every_worker(server, "/feed.rss", feed_has(new, present=False))

    # The whole directory gone: keep serving, say degraded (503), recover when it is back.
    moved = tmp_seeds.with_name("moved-away")
    tmp_seeds.rename(moved)
    every_worker(
        server, "/healthz", health_says(lambda s, d: (s, d["status"]) == (503, "degraded"))
    )
    every_worker(server, "/feed.rss", feed_has(first))
    moved.rename(tmp_seeds)
    every_worker(server, "/healthz", health_says(lambda s, d: (s, d["status"]) == (200, "ok")))
    every_worker(server, "/feed.rss", feed_has(first))
    assert "Traceback" not in server.output()


def test_preload_parses_the_directory_once(
    start_gunicorn: Callable[..., GunicornServer],
    write_seed: Callable[..., Path],
    tmp_seeds: Path,
) -> None:
    for n in range(5):
        write_seed(f"{n}.txt")
    server = start_gunicorn(tmp_seeds, "--preload", *ACCESS_LOG, workers=3)
    every_worker(server, "/feed.rss", lambda status, body: status == 200)
    log = server.output()
    full_loads = [line for line in log.splitlines() if "reload:" in line and "parsed=5" in line]
    assert len(full_loads) == 1, log


_RELOADED = re.compile(r"\[(\d+)\] INFO feedserver\.store: reload: files=\d+ parsed=(\d+) ")


def _release(folder: Path, release: int, published: bool = True) -> None:
    """A seeds tree of one release: top.md and sub/s.md, titled by release."""
    for name in ("top.md", "sub/s.md"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shown = "true" if published or name == "top.md" else "false"
        path.write_text(
            f"---\ntitle: {name} of release {release}\n"
            f"webUrl: https://example.com/{Path(name).stem}\n"
            f"publishedDateTime: 2024-01-01\npublished: {shown}\n---\n",
            encoding="utf-8",
        )


def feed_titles(titles: set[str]) -> Check:
    """A check that /feed.rss holds exactly these titles."""

    def check(status: int, body: bytes) -> bool:
        assert status == 200
        return {entry.title for entry in feedparser.parse(body).entries} == titles

    return check


def test_a_seeds_folder_swapped_by_rename_stays_watched(
    start_gunicorn: Callable[..., GunicornServer], tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    _release(seeds, 0)
    server = start_gunicorn(
        seeds, "-c", GUNICORN_CONF, *ACCESS_LOG, env={"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL)}
    )
    every_worker(server, "/feed.rss", feed_titles({"top.md of release 0", "sub/s.md of release 0"}))
    for release in (1, 2):  # the usual atomic deploy, twice
        _release(tmp_path / "seeds.new", release)
        os.rename(seeds, tmp_path / f"seeds.old{release}")
        os.rename(tmp_path / "seeds.new", seeds)
        titles = {f"top.md of release {release}", f"sub/s.md of release {release}"}
        every_worker(server, "/feed.rss", feed_titles(titles))
    # The release's takedown in a subfolder: the master's first or second reload after the
    # edit takes it down (not the every-tenth full scan), for every worker.
    offset = len(server.output())
    _release(seeds, 2, published=False)
    every_worker(server, "/feed.rss", feed_titles({"top.md of release 2"}))
    reloads: dict[str, list[int]] = {}
    for pid, parsed in _RELOADED.findall(server.output()[offset:]):
        reloads.setdefault(pid, []).append(int(parsed))
    assert reloads.keys() == {str(server.pid)}, reloads  # the master reloads for them all
    first_parse = next(n for n, parsed in enumerate(reloads[str(server.pid)]) if parsed)
    assert first_parse <= 1, reloads
    assert "Traceback" not in server.output()

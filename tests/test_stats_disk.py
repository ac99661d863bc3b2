"""Where the stats database lives can fill up, or be shared with other users; neither may
stop serving. Under a real gunicorn: a full disk under stats_db (a small tmpfs, mounted by
the test as root) leaves every poll answered and every worker alive, with /healthz saying
the stats are failing; a database file made in advance by another user, or a symlink in its
place, is refused with one log line, and serving goes on."""

from __future__ import annotations

import errno
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, GunicornServer

GUNICORN_CONF = str(ROOT / "config" / "gunicorn.conf.py")
OTHER_UID = 4242


def _get(server: GunicornServer, path: str, agent: str = "curl/8.5.0") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"User-Agent": agent})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _stats_health(server: GunicornServer) -> str:
    status, body = _get(server, "/healthz")
    assert status == 200, body
    return str(json.loads(body).get("stats"))


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start(start: Callable[..., GunicornServer], seeds: Path, database: Path) -> GunicornServer:
    env = {"FEEDSERVER_STATS_DB": str(database), "FEEDSERVER_STATS_FLUSH_SECONDS": "1"}
    return start(seeds, "-c", GUNICORN_CONF, env=env, workers=2)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs, unmounted afterwards; skipped where it cannot be mounted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    """Write to the folder's disk until it is full."""
    block = b"\0" * 65536
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    with open(folder / "filler-small", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_under_the_stats_database_stops_no_worker(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path, small_disk: Path
) -> None:
    server = _start(start_gunicorn, seeds_dir, small_disk / "stats.sqlite3")
    workers = server.wait_workers(2)
    assert _get(server, "/topics/ai.rss", "First/1")[0] == 200
    _wait_for(lambda: _stats_health(server) == "ok", "a first write")
    _fill(small_disk)
    for number in range(50):
        status, _ = _get(server, "/topics/ai.rss", f"Reader{number}/1.0 (distinct)")
        assert status == 200, number
        time.sleep(0.05)
    _wait_for(lambda: _stats_health(server) == "failing", "the stats to be failing")
    for number in range(50, 100):  # more polls while each write fails
        assert _get(server, "/feed.atom", f"Reader{number}/1.0")[0] == 200
    time.sleep(2.5)
    assert server.workers() == workers
    log = server.output()
    assert "SIGBUS" not in log and log.count("Booting worker") == 2
    assert "full" in log  # "database or disk is full", once per worker
    # Room again: the counts held meanwhile are written.
    (small_disk / "filler").unlink()
    _wait_for(lambda: _direct(server) == 51, "the held counts of both workers to be written")
    assert _stats_health(server) == "ok"


def _direct(server: GunicornServer) -> int:
    _, body = _get(server, "/stats.json")
    feeds = json.loads(body)["feeds"]
    return next((int(f["direct"]) for f in feeds if f["feed"] == "topic:ai"), 0)


def test_a_full_disk_before_start_stops_no_worker(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path, small_disk: Path
) -> None:
    _fill(small_disk)
    server = _start(start_gunicorn, seeds_dir, small_disk / "stats.sqlite3")
    workers = server.wait_workers(2)
    for number in range(50):
        assert _get(server, "/topics/ai.rss", f"Reader{number}/1.0")[0] == 200
    assert _stats_health(server) == "failing"
    time.sleep(2.5)
    assert server.workers() == workers and "SIGBUS" not in server.output()


@pytest.mark.parametrize("kind", ["other user's file", "symlink", "other user's -wal"])
def test_a_stats_database_of_someone_else_is_refused(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path, tmp_path: Path, kind: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    os.chmod(shared, 0o1777)  # a folder every user may write to, as /var/tmp
    database = shared / "stats.sqlite3"
    target = tmp_path / "elsewhere.sqlite3"
    if kind == "symlink":
        database.symlink_to(target)
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a file to another user needs root")
        made = database if kind == "other user's file" else Path(f"{database}-wal")
        made.write_bytes(b"")
        os.chown(made, OTHER_UID, OTHER_UID)
    server = _start(start_gunicorn, seeds_dir, database)
    for number in range(5):
        assert _get(server, "/topics/ai.rss", f"Reader{number}/1.0")[0] == 200
    assert _stats_health(server) == "failing"
    time.sleep(2.5)  # a few flushes: no more lines
    refusals = [line for line in server.output().splitlines() if "refused" in line]
    assert len(refusals) == 1, refusals  # once, by the master, which loads for its workers
    assert "counted" in refusals[0]
    assert not target.exists()
    if kind == "other user's file":
        assert database.stat().st_size == 0  # never written to


def test_a_full_disk_under_the_metrics_folder_stops_no_worker(
    start_gunicorn: Callable[..., GunicornServer],
    seeds_dir: Path,
    small_disk: Path,
    tmp_path: Path,
) -> None:
    metrics = small_disk / "metrics"
    metrics.mkdir()
    _fill(small_disk)
    env = {
        "FEEDSERVER_STATS_DB": str(tmp_path / "stats.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    server = start_gunicorn(seeds_dir, "-c", GUNICORN_CONF, env=env, workers=2)
    workers = server.wait_workers(2)
    for number in range(50):
        assert _get(server, "/topics/ai.rss", f"Reader{number}/1.0")[0] == 200
    assert _get(server, "/metrics")[0] == 200
    time.sleep(1)
    log = server.output()
    assert server.workers() == workers
    assert "SIGBUS" not in log and log.count("Booting worker") == 2
    assert "figures stay in memory" in log


def test_metrics_files_have_their_blocks(tmp_path: Path) -> None:
    from feedserver.metric_files import INITIAL_BYTES, AllocatedMmapedDict

    name = str(tmp_path / "counter_1.db")
    values = AllocatedMmapedDict(name)
    for number in range(30_000):  # past the first size: the file grows
        values.write_value(f"key-{number:05d}-" + "x" * 40, float(number), 0.0)  # type: ignore[no-untyped-call]
    values.close()  # type: ignore[no-untyped-call]
    info = os.stat(name)
    assert info.st_size > INITIAL_BYTES
    assert info.st_blocks * 512 >= info.st_size  # no hole for a full disk to SIGBUS on
    again = AllocatedMmapedDict(name)
    assert again.read_value("key-29999-" + "x" * 40) == (29999.0, 0.0)  # type: ignore[no-untyped-call]
    again.close()  # type: ignore[no-untyped-call]

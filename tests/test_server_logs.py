"""What a real server logs, launched both ways (`feedserver serve` and gunicorn with
config/gunicorn.conf.py): a quiet start, nothing while idle, one line per reload that changed
something, and a stop on SIGTERM without a traceback from any worker."""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks import servers
from feedserver import logs
from feedserver.gunicorn_hooks import _exit_code

from .conftest import BUNDLED_SEEDS

START_TIMEOUT = 60.0
LAUNCHES = ["feedserver-serve", "gunicorn-conf"]
# A log line of the app's own format: time, [pid], level, logger.
APP_LINE = re.compile(r"^\S+ \S+ \[\d+\] (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")


def start(
    how: str, tmp_path: Path, workers: int, *options: str, **settings: str
) -> servers.GunicornServer:
    """Start a server over a copy of the bundled seeds at tmp_path/seeds, launched `how`,
    with more command-line options and FEEDSERVER_* settings; once it answers. The caller
    stops it."""
    seeds = tmp_path / "seeds"
    if not seeds.exists():
        shutil.copytree(BUNDLED_SEEDS, seeds)
    env = {
        "PATH": "/usr/bin:/bin",
        "FEEDSERVER_SEEDS_DIR": str(seeds),
        "FEEDSERVER_STATS_DB": "",
        "FEEDSERVER_POLITE_POLLING": "false",
        "FEEDSERVER_CACHE_DIR": str(tmp_path / "cache"),
        **{f"FEEDSERVER_{name.upper()}": value for name, value in settings.items()},
    }
    port = servers.free_port()
    if how == "feedserver-serve":
        command = [sys.executable, "-m", "feedserver", "serve", "--port", str(port)]
        command += ["--workers", str(workers), *options]
    else:
        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"]
        command += ["-w", str(workers), "-b", f"{servers.HOST}:{port}", *options, "wsgi:app"]
    server = servers.launch(command, port, tmp_path / f"{how}.log", env)
    try:
        server.wait_ready(timeout=START_TIMEOUT)
        # Every worker serving, its signal handlers in place: a SIGTERM that comes while a
        # worker still boots is lost (gunicorn's), and the master kills it after a timeout.
        wait_for(lambda: len(serving_workers(server.output())) == workers, "every worker")
    except Exception:
        server.stop()
        raise
    return server


def serving_workers(log: str) -> set[str]:
    """The workers that follow their master's reloads (it loads and reloads for them)."""
    return set(re.findall(r"worker (\d+) serves the master's catalog", log))


def app_lines(log: str, level: str | None = None, logger: str = "") -> list[str]:
    """The app's log lines (not gunicorn's), of one level and under one logger if given."""
    found = []
    for line in log.splitlines():
        match = APP_LINE.match(line)
        if not match or not match["logger"].startswith(logger):
            continue
        if level is None or match["level"] == level:
            found.append(line)
    return found


def wait_for(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until check() is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("how", LAUNCHES)
def test_an_idle_server_logs_nothing_and_a_change_one_line(how: str, tmp_path: Path) -> None:
    server = start(how, tmp_path, workers=1, reload_interval="1")
    try:
        # A few reloads that find nothing new (the first of them may be the job's catch-up).
        time.sleep(3.5)
        idle = server.output()
        unpublished = tmp_path / "seeds" / "001_db4b9f1a9b445236.txt"
        unpublished.write_text(
            unpublished.read_text("utf-8").replace("published: false", "published: true"),
            "utf-8",
        )

        def changed() -> bool:
            return len(app_lines(server.output(), "INFO", "feedserver.store")) >= 2

        wait_for(changed, "the reload of the changed file")
        time.sleep(2.5)  # and a couple of idle reloads after it
        assert server.fetch("/healthz")[0] == 200
    finally:
        server.stop()
    log = server.output()
    assert "Adding job tentatively" not in log, log
    assert app_lines(log, "INFO", "apscheduler") == [], log
    # Start-up: one reload line (the first load); idle reloads say nothing at INFO.
    (first_load,) = app_lines(idle, "INFO", "feedserver.store")
    assert "rebuilt=True" in first_load
    # The change: exactly one INFO line, for the reload that parsed it.
    reloads = app_lines(log, "INFO", "feedserver.store")
    assert len(reloads) == 2, log
    assert " parsed=1 " in reloads[1] and "rebuilt=True" in reloads[1]
    # Nothing else at INFO from the app after start-up: the change's line is the only one.
    after_start = app_lines(log, "INFO")[len(app_lines(idle, "INFO")) :]
    assert after_start == [reloads[1]], log


@pytest.mark.parametrize("how", LAUNCHES)
def test_the_master_logs_its_load_then_nothing(how: str, tmp_path: Path) -> None:
    # --preload, which older commands pass, is still accepted: the master loads either way.
    server = start(how, tmp_path, 2, "--preload", reload_interval="1")
    try:
        time.sleep(3.5)
    finally:
        server.stop()
    log = server.output()
    # The master's load only: its workers share its catalog and reload nothing themselves.
    (load,) = app_lines(log, "INFO", "feedserver.store")
    assert f" [{server.pid}] " in load, log
    assert "rebuilt=True" in load
    assert app_lines(log, "INFO", "apscheduler") == [], log
    assert "Traceback" not in log, log


@pytest.mark.parametrize("how", LAUNCHES)
def test_log_level_debug_shows_idle_reloads_and_apscheduler(how: str, tmp_path: Path) -> None:
    server = start(how, tmp_path, 1, "--log-level", "debug", reload_interval="1")
    try:

        def idle_reloads() -> bool:
            return len(app_lines(server.output(), "DEBUG", "feedserver.store")) >= 2

        wait_for(idle_reloads, "two reloads that changed nothing")
    finally:
        server.stop()
    log = server.output()
    assert all("rebuilt=False" in line for line in app_lines(log, "DEBUG", "feedserver.store"))
    assert app_lines(log, "INFO", "apscheduler"), log
    assert "Traceback" not in log, log


@pytest.mark.parametrize("how", LAUNCHES)
def test_sigterm_stops_every_worker_without_a_traceback(how: str, tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    # The counts reach the database only by the flush at exit, long before the next batch.
    server = start(how, tmp_path, workers=2, stats_db=str(stats), stats_flush_seconds="300")
    try:
        for _ in range(4):
            assert server.fetch("/feed.rss")[0] == 200
        assert len(server.workers()) == 2
    finally:
        server.stop()  # SIGTERM, as a service manager sends it
    log = server.output()
    assert server.process.returncode == 0, log
    assert "Traceback" not in log, log
    assert "Exception ignored" not in log, log
    assert log.count("Worker exiting") == 2, log
    assert "Shutting down: Master" in log
    assert not server.workers()
    # The exit handlers ran before each worker left: its counts were written.
    with sqlite3.connect(stats) as db:
        (polls,) = db.execute("SELECT SUM(polls) FROM polls WHERE feed = 'all'").fetchone()
    assert polls == 4, log


@pytest.mark.parametrize(
    ("leaving", "code"),
    [
        (None, 0),
        (SystemExit(), 0),
        (SystemExit(0), 0),
        (SystemExit(3), 3),
        (SystemExit("worker: gave up"), 1),
        (RuntimeError("boom"), 1),
    ],
)
def test_a_leaving_worker_keeps_its_exit_code(
    leaving: BaseException | None, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(leaving) == code
    if isinstance(leaving, SystemExit) and isinstance(leaving.code, str):
        assert capsys.readouterr().err == "worker: gave up\n"


# --- the levels configure_logging chooses -------------------------------------------------


@pytest.fixture
def fresh_levels() -> Iterator[None]:
    """The root's and APScheduler's levels as they were, after the test; none of ours."""
    root, library = logging.getLogger(), logging.getLogger("apscheduler")
    kept = root.level, library.level, set(logs._quietened)
    library.setLevel(logging.NOTSET)
    logs._quietened.clear()
    yield
    root.setLevel(kept[0])
    library.setLevel(kept[1])
    logs._quietened.clear()
    logs._quietened.update(kept[2])


@pytest.mark.usefixtures("fresh_levels")
def test_apscheduler_logs_warnings_only_by_default() -> None:
    logs.configure_logging("info")
    assert not logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.WARNING)
    assert logging.getLogger("feedserver.store").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("fresh_levels")
def test_debug_lets_apscheduler_speak_and_info_quiets_it_again() -> None:
    logs.configure_logging("debug")
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.DEBUG)
    logs.configure_logging(logging.INFO)  # a later choice (gunicorn's, after a --preload)
    assert not logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("fresh_levels")
def test_an_operators_level_for_apscheduler_is_kept() -> None:
    logging.getLogger("apscheduler").setLevel(logging.INFO)  # from a logging config, say
    logs.configure_logging("info")
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.INFO)

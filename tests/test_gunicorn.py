"""A real gunicorn with two workers serving wsgi:app over a copy of the bundled seeds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest

from benchmarks import servers
from feedserver.config import ENV_PREFIX

from .conftest import GunicornServer

BUNDLED_SEEDS = Path(__file__).resolve().parent.parent / "seeds"
HOTHARDWARE = "https://hothardware.com/news/openai-supercomputer-by-microsoft"
TECHCRUNCH = (
    "https://techcrunch.com/2020/05/19/"
    "microsoft-says-it-teamed-up-with-openai-to-build-a-massive-ai-supercomputer-in-azure/"
)


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """One gunicorn for this module's tests, over a copy of the bundled seeds."""
    seeds = tmp_path_factory.mktemp("gunicorn") / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    started = gunicorn_launcher(seeds, seeds.parent / "logs")
    yield started
    started.stop()


def test_start_gunicorn_fixture_with_settings(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path
) -> None:
    started = start_gunicorn(
        seeds_dir, "--preload", env={"FEEDSERVER_SITE_TITLE": "Preloaded"}, workers=1
    )
    status, _, body = started.fetch("/feed.rss")
    assert status == 200
    assert feedparser.parse(body).feed.title == "Preloaded"


@pytest.mark.parametrize(
    ("path", "content_type", "version"),
    [
        ("/feed.rss", "application/rss+xml; charset=utf-8", "rss20"),
        ("/topics/ai.atom", "application/atom+xml; charset=utf-8", "atom10"),
        ("/topics/ai.rss", "application/rss+xml; charset=utf-8", "rss20"),
        ("/feed.atom", "application/atom+xml; charset=utf-8", "atom10"),
    ],
)
def test_gunicorn_serves_the_published_articles(
    server: GunicornServer, path: str, content_type: str, version: str
) -> None:
    status, headers, body = server.fetch(path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == version
    assert [entry.link for entry in parsed.entries] == [HOTHARDWARE, TECHCRUNCH]
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [server.url + path]


def test_gunicorn_health_and_404(server: GunicornServer) -> None:
    status, _, body = server.fetch("/healthz")
    assert status == 200
    health = json.loads(body)
    assert (health["status"], health["articles"], health["errors"]) == ("ok", 2, [])
    status, _, body = server.fetch("/topics/azure.rss")
    assert status == 404
    assert b"Traceback" not in body
    status, _, body = server.fetch("/feed.rss?limit=0")
    assert status == 400
    assert b"limit" in body


def test_gunicorn_workers_give_identical_bodies(server: GunicornServer) -> None:
    bodies = {server.fetch("/topics/ai.atom")[2] for _ in range(6)}
    assert len(bodies) == 1


# --- start-up that cannot succeed stops the whole server --------------------------------

# Generous: a loaded machine may take long to boot workers; a server that restarts its
# workers forever never exits at all.
EXIT_DEADLINE = 120


def run_until_exit(
    tmp_path: Path, *args: str, env: dict[str, str], workers: int = 2
) -> tuple[int, str]:
    """Run `python -m gunicorn -w N -b 127.0.0.1:0 [args] wsgi:app` in the repository and
    wait for it to exit on its own: (exit code, output)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    environment.update(FEEDSERVER_STATS_DB=str(tmp_path / "stats.sqlite3"), **env)
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", "127.0.0.1:0"]
    server = servers.launch(
        [*command, *args, "wsgi:app"], 0, tmp_path / "gunicorn.log", environment
    )
    try:
        server.process.wait(timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        server.stop()  # only the gunicorn this test started
        pytest.fail(f"gunicorn still running after {EXIT_DEADLINE} s:\n{server.tail(40)}")
    return server.process.returncode, server.output()


def problem_lines(output: str) -> set[str]:
    """The distinct lines feedserver printed about the problem."""
    return {line for line in output.splitlines() if line.startswith("feedserver: ")}


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"FEEDSERVER_RELOAD_INTERVAL": "often"},
            ("reload_interval", "FEEDSERVER_RELOAD_INTERVAL"),
        ),
        ({"FEEDSERVER_SEEDS_DIR": "/nonexistent/seeds"}, ("/nonexistent/seeds", "no such")),
    ],
    ids=["bad-setting", "missing-seeds-dir"],
)
def test_plain_gunicorn_exits_when_a_worker_cannot_start(
    tmp_path: Path, env: dict[str, str], words: tuple[str, ...]
) -> None:
    code, output = run_until_exit(tmp_path, env=env)
    assert code != 0, output
    (line,) = problem_lines(output)
    for word in words:
        assert word in line
    # No traceback through our code. (When several workers fail at once, gunicorn's master
    # may print its own HaltServer traceback while it stops: a known gunicorn behaviour.)
    assert not re.search(r'File ".*(/feedserver/|wsgi\.py)', output), output
    # Stopped, not restarted again and again: no more boots than workers.
    assert output.count("Booting worker") <= 2, output


def test_gunicorn_settings_file_stops_before_any_worker_forks(tmp_path: Path) -> None:
    code, output = run_until_exit(
        tmp_path,
        "-c",
        "config/gunicorn.conf.py",
        env={"FEEDSERVER_SEEDS_DIR": str(tmp_path / "typo")},
    )
    assert code != 0, output
    lines = [line for line in output.splitlines() if line.startswith("feedserver: ")]
    assert len(lines) == 1, output
    assert str(tmp_path / "typo") in lines[0]
    assert "Booting worker" not in output


def test_unknown_variable_is_warned_about_once_per_server(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path
) -> None:
    server = start_gunicorn(
        seeds_dir,
        "-c",
        "config/gunicorn.conf.py",
        env={"FEEDSERVER_RELOAD_INTERVALL": "5"},
        workers=2,
    )
    assert server.fetch("/feed.rss")[0] == 200
    warnings = [line for line in server.output().splitlines() if "RELOAD_INTERVALL" in line]
    assert len(warnings) == 1, server.output()
    assert "did you mean FEEDSERVER_RELOAD_INTERVAL?" in warnings[0]

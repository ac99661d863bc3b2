"""Polite polling with the default settings, under a real gunicorn (the README's way, with
config/gunicorn.conf.py): what curl, a probe, newsboat and a reader subscribing do is never
refused; a flood is, soon, with a Retry-After no longer than reload_interval. And two servers
started from one folder keep their polling limits and their figures apart."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from email.message import Message
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest
import yaml

from benchmarks import servers
from benchmarks.fresh import clean_environment
from feedserver.politeness import BURST

from .conftest import BUNDLED_SEEDS, ROOT, GunicornServer, seed_fields
from .test_audience import AGGREGATOR_AGENTS
from .test_readers import install_debian_package

CURL = "curl/8.5.0"
NEWSBOAT = "newsboat/2.36.0 (Linux x86_64)"
FEEDLY = AGGREGATOR_AGENTS[0][0]
GUNICORN_CONF = str(ROOT / "config" / "gunicorn.conf.py")
RELOAD_INTERVAL = 60  # the default
EXTRA_ARTICLES = 60  # more than a page of the default limit (50): the feed has a page 2


def fetch(
    url: str, agent: str = CURL, headers: Mapping[str, str] | None = None
) -> tuple[int, Message, bytes]:
    """One GET as curl makes it (urllib, a curl User-Agent): status, headers, body."""
    request = urllib.request.Request(
        url, headers={"User-Agent": agent, "Accept": "*/*", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _seeds(folder: Path) -> Path:
    """The bundled seeds and enough articles of one topic for a second page."""
    seeds = folder / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    for number in range(EXTRA_ARTICLES):
        fields = seed_fields(
            f"paged-{number}.yaml",
            topics=["Paged"],
            publishedDateTime=f"2020-06-01T{number // 60:02d}:{number % 60:02d}:00Z",
        )
        (seeds / f"paged-{number}.yaml").write_text(yaml.safe_dump(fields), encoding="utf-8")
    return seeds


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """One gunicorn with the default polling settings and two workers."""
    folder = tmp_path_factory.mktemp("polite")
    env = {"FEEDSERVER_POLITE_POLLING": "true"}  # the default; the tests' launcher turns it off
    running = gunicorn_launcher(_seeds(folder), folder, "-c", GUNICORN_CONF, env=env, workers=2)
    yield running
    running.stop()


def test_curl_three_times_in_a_row_then_a_reader_subscribing(server: GunicornServer) -> None:
    url = server.url + "/topics/ai.rss"  # the README's own example
    assert [fetch(url)[0] for _ in range(3)] == [200, 200, 200]
    # A reader subscribing right after, then reloading everything at once.
    assert [fetch(url, NEWSBOAT)[0] for _ in range(3)] == [200, 200, 200]


def test_pages_limits_and_searches_are_feeds_of_their_own(server: GunicornServer) -> None:
    status, _, body = fetch(server.url + "/topics/paged.atom")
    assert status == 200
    (following,) = [link.href for link in feedparser.parse(body).feed.links if link.rel == "next"]
    assert following == server.url + "/topics/paged.atom?page=2"
    for path in ("/topics/paged.atom?page=2", "/topics/paged.atom?limit=10"):
        for _ in range(2):
            assert fetch(server.url + path)[0] == 200, path
    for query in ("cloud", "chip", "supercomputer"):
        for _ in range(2):
            assert fetch(f"{server.url}/feed.rss?q={query}")[0] == 200, query


def test_conditional_pollers_always_get_304(server: GunicornServer) -> None:
    url = server.url + "/topics/microsoft-ai.atom"
    status, headers, _ = fetch(url, "FreshRSS/1.23.1")
    assert status == 200
    by_etag = {"If-None-Match": headers["ETag"]}
    by_date = {"If-Modified-Since": headers["Last-Modified"]}
    for _ in range(30):  # far faster than reload_interval, and far more than a burst
        assert fetch(url, "FreshRSS/1.23.1", by_etag)[0] == 304
        assert fetch(url, "FreshRSS/1.23.1", by_date)[0] == 304


def test_aggregators_and_browsers_are_never_limited(server: GunicornServer) -> None:
    url = server.url + "/providers/techcrunch.com.rss"
    for _ in range(BURST * 2):
        assert fetch(url, FEEDLY)[0] == 200
        assert fetch(url, "Mozilla/5.0 Firefox/130", {"Sec-Fetch-Dest": "document"})[0] == 200


def test_a_flood_of_unconditional_polls_is_refused_within_seconds(server: GunicornServer) -> None:
    url = server.url + "/providers/hothardware.com.json"
    refused: tuple[float, Message] | None = None
    started = time.monotonic()
    for _ in range(100):  # twenty a second, five seconds at most
        status, headers, body = fetch(url, "Flood/1.0")
        if status == 429:
            refused = (time.monotonic() - started, headers)
            assert b"If-None-Match" in body
            break
        assert status == 200
        time.sleep(0.05)
    assert refused is not None, "never refused"
    seconds, headers = refused
    assert seconds < 3
    assert 1 <= int(headers["Retry-After"]) <= RELOAD_INTERVAL
    assert headers["Cache-Control"] == "no-store"
    # Another client, and the same client's other feeds, are not held back by it.
    assert fetch(url, CURL)[0] == 200
    assert fetch(server.url + "/providers/hothardware.com.rss", "Flood/1.0")[0] == 200


def test_clients_behind_a_trusted_proxy_have_allowances_of_their_own(
    server: GunicornServer,
) -> None:
    """The bundled nginx (on loopback, a trusted proxy) names each client in X-Real-IP:
    one client flooding through it does not use up another's allowance."""
    url = server.url + "/providers/hothardware.com.atom"
    flooder, reader = {"X-Real-IP": "203.0.113.7"}, {"X-Real-IP": "198.51.100.9"}
    statuses = [fetch(url, NEWSBOAT, flooder)[0] for _ in range(BURST + 1)]
    assert statuses == [200] * BURST + [429]
    assert fetch(url, NEWSBOAT, reader)[0] == 200
    # A header that is no address names nobody: the peer is the client then.
    garbage = {"X-Real-IP": "not an address"}
    assert [fetch(url, NEWSBOAT, garbage)[0] for _ in range(BURST + 1)][-1] == 429


# --- newsboat ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def newsboat() -> str:
    """newsboat, installed from its Debian package when missing (as test_readers.py does)."""
    return install_debian_package("newsboat", "newsboat")


def test_newsboat_subscribes_to_the_opml_and_reloads_twice(
    newsboat: str, server: GunicornServer, tmp_path: Path
) -> None:
    status, _, opml = fetch(server.url + "/feeds.opml", NEWSBOAT)
    assert status == 200
    feeds = [
        outline.attrib["xmlUrl"]
        for outline in ElementTree.fromstring(opml).iter("outline")
        if "xmlUrl" in outline.attrib
    ]
    assert len(feeds) >= 5
    fetch(feeds[0])  # curl had a look first
    config = tmp_path / "config"
    config.write_text(f'urls-source "opml"\nopml-url "{server.url}/feeds.opml"\n')
    cache = tmp_path / "cache.db"
    command = [newsboat, "-c", str(cache), "-C", str(config), "-u", str(tmp_path / "urls")]
    before = server.output().count('" 429 ')
    for _ in range(2):  # subscribe (a fresh cache), then reload all right away
        result = subprocess.run(
            [*command, "-x", "reload"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert "429" not in output and "rror" not in output, output
    with sqlite3.connect(cache) as db:
        fetched = {row[0] for row in db.execute("SELECT rssurl FROM rss_feed")}
        items = db.execute("SELECT count(*) FROM rss_item").fetchone()[0]
    assert set(feeds) <= fetched and items > 0
    assert server.output().count('" 429 ') == before, server.tail(40)


# --- two servers from one folder ----------------------------------------------------------


def _start_in(folder: Path, seeds: Path, how: str, logs: Path) -> GunicornServer:
    """A server with the default settings, started in `folder` the way `how` names."""
    port = servers.free_port()
    if how.startswith("serve"):
        command = [sys.executable, "-m", "feedserver", "serve", "--port", str(port)]
        command += ["--workers", "2", "--seeds", str(seeds)]
        command += ["--preload"] if how == "serve-preload" else []
    else:
        command = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "-b"]
        command += [f"{servers.HOST}:{port}", "-w", "2", "wsgi:app"]
        command += ["--preload"] if how == "gunicorn-config-preload" else []
    env = clean_environment(FEEDSERVER_SEEDS_DIR=str(seeds), FEEDSERVER_STATS_FLUSH_SECONDS="1")
    server = servers.launch(command, port, logs / f"{how}-{port}.log", env, cwd=folder)
    try:
        server.wait_ready(timeout=60, any_status=True, probe_timeout=2)
    except (servers.ServerExited, TimeoutError):
        server.stop()
        raise AssertionError(f"the server did not start:\n{server.output()}") from None
    return server


def _control_socket(server: GunicornServer) -> str:
    """The control socket path a server's gunicorn said it listens at."""
    for line in server.output().splitlines():
        if "Control socket listening at " in line:
            return line.rsplit(" ", 1)[-1]
    pytest.skip("this gunicorn has no control socket")


def _figures(server: GunicornServer) -> dict[str, dict[str, int]]:
    status, _, body = fetch(server.url + "/stats.json")
    assert status == 200, body
    return {feed["feed"]: feed for feed in json.loads(body)["feeds"]}


@pytest.mark.parametrize(
    "how", ["serve", "serve-preload", "gunicorn-config", "gunicorn-config-preload"]
)
def test_two_servers_of_one_folder_keep_their_limits_and_figures_apart(
    seeds_dir: Path, tmp_path: Path, how: str
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    first = _start_in(folder, seeds_dir, how, tmp_path)
    try:
        second = _start_in(folder, seeds_dir, how, tmp_path)
        try:
            # Polling limits: the first server's refusal says nothing to the second, and a
            # refusal holds whichever of its workers answers.
            statuses = [fetch(first.url + "/topics/ai.rss")[0] for _ in range(BURST + 3)]
            assert statuses == [200] * BURST + [429] * 3
            assert fetch(second.url + "/topics/ai.rss")[0] == 200
            # Figures: the first server's poll is counted there only.
            assert fetch(first.url + "/providers/techcrunch.com.rss", FEEDLY)[0] == 200
            deadline = time.monotonic() + 30
            while "provider:techcrunch.com" not in _figures(first) or "topic:ai" not in _figures(
                second
            ):
                assert time.monotonic() < deadline, "the polls were never counted"
                time.sleep(0.3)
            assert _figures(first)["provider:techcrunch.com"]["subscribers"] == 123
            time.sleep(1.5)  # any write of the second server's still due
            assert "provider:techcrunch.com" not in _figures(second)
            assert _figures(second)["topic:ai"]["limited"] == 0
            assert _figures(first)["topic:ai"]["limited"] == 3
            names = sorted(path.name for path in (folder / "var").iterdir())
            assert f"stats-127.0.0.1-{first.port}.sqlite3" in names
            assert f"stats-127.0.0.1-{second.port}.sqlite3" in names
            assert not any(name.startswith("stats.sqlite3") for name in names), names
            assert not any("polling" in name for name in names), names
            # gunicorn's control socket (gunicornc) is each server's own as well.
            sockets = [_control_socket(server) for server in (first, second)]
            assert sockets[0] != sockets[1]
            assert all(
                f"-{s.port}.ctl" in path for s, path in zip((first, second), sockets, strict=True)
            )
        finally:
            second.stop()
    finally:
        first.stop()

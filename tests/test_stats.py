"""Subscriber counts, /stats, /metrics and polite polling: through the Flask app, and under a
real gunicorn with three workers sharing one stats database."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import lxml.html
from flask import Flask
from flask.testing import FlaskClient

from feedserver.politeness import BURST
from feedserver.polls import PollRecorder
from feedserver.stats_figures import site_days
from feedserver.statsdb import Batch, StatsDB

from .conftest import GunicornServer
from .test_audience import AGGREGATOR_AGENTS

BASE = "http://feeds.test"
FEEDLY = AGGREGATOR_AGENTS[0][0]  # 123 subscribers
FEEDBIN = AGGREGATOR_AGENTS[4][0]  # 42, feed-id 1373711
OLD_READER = AGGREGATOR_AGENTS[5][0]  # 4, feed-id 98765
INOREADER = AGGREGATOR_AGENTS[1][0]  # 12
NEWSBLUR = AGGREGATOR_AGENTS[2][0]  # 5, site 1234
READERS = ["newsboat/2.36.0 (Linux x86_64)", "NetNewsWire (RSS Reader)", "curl/8.5.0"]
UNTRUSTED = {"REMOTE_ADDR": "203.0.113.9"}


def _app(make_app: Callable[..., Flask], seeds: Path, tmp_path: Path, **settings: Any) -> Flask:
    return make_app(seeds, base_url=BASE, stats_db=str(tmp_path / "stats.sqlite3"), **settings)


def _flush(app: Flask) -> None:
    recorder: PollRecorder = app.extensions["feedserver.polls"]
    recorder.flush()


def _poll(client: FlaskClient, path: str, agent: str, address: str = "192.0.2.1", **headers: str):  # type: ignore[no-untyped-def]
    return client.get(
        path, headers={"User-Agent": agent, **headers}, environ_base={"REMOTE_ADDR": address}
    )


def _stats(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/stats.json")
    assert response.status_code == 200, response.data
    assert response.headers["Cache-Control"] == "no-store"
    data: dict[str, Any] = response.get_json()
    return data


def _feed(data: Mapping[str, Any], feed: str) -> dict[str, Any]:
    return next(f for f in data["feeds"] if f["feed"] == feed)


def test_stats_json_counts_aggregators_and_direct_pollers(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path)
    client = app.test_client()
    for agent in (FEEDLY, FEEDBIN, OLD_READER):
        assert _poll(client, "/topics/ai.rss", agent).status_code == 200
    etag = _poll(client, "/topics/ai.atom", INOREADER).headers["ETag"]
    assert _poll(client, "/topics/ai.atom", INOREADER, **{"If-None-Match": etag}).status_code == 304
    assert client.head("/topics/ai.json", headers={"User-Agent": NEWSBLUR}).status_code == 200
    for number, agent in enumerate(READERS):
        _poll(client, "/topics/ai.rss", agent, f"198.51.100.{number}")
    _poll(client, "/topics/ai", "Mozilla/5.0 Firefox/130", "198.51.100.9")  # the page
    _poll(client, "/topics/ai.rss", READERS[0], "198.51.100.0")  # the same reader again
    _poll(client, "/topics/no-such-topic.rss", READERS[0])  # a 404 is no poll
    _flush(app)
    ai = _feed(_stats(client), "topic:ai")
    assert ai["aggregators"] == {
        "Feedly": 123,
        "Feedbin": 42,
        "The Old Reader": 4,
        "Inoreader": 12,
        "NewsBlur": 5,
    }
    assert ai["direct"] == 4
    assert ai["subscribers"] == 123 + 42 + 4 + 12 + 5 + 4
    assert ai["polls"] == 3 + 2 + 1 + 3 + 1 + 1
    assert ai["name"] == "AI" and ai["page"] == f"{BASE}/topics/ai"
    assert ai["history"][-1]["subscribers"] == ai["subscribers"]
    assert all(f["feed"] != "topic:no-such-topic" for f in _stats(client)["feeds"])


def test_a_reader_of_three_feeds_counts_once_in_the_daily_total(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path)
    client = app.test_client()
    feeds = ("/feed.rss", "/topics/ai.atom", "/providers/techcrunch.com.json")
    for path in feeds:
        assert _poll(client, path, READERS[0], "198.51.100.7").status_code == 200
    _poll(client, "/topics/ai", READERS[0], "198.51.100.7")  # the page: the same feed again
    # One aggregator reporting its readers of two feeds: mostly the same people.
    _poll(client, "/feed.rss", FEEDLY)
    _poll(client, "/topics/ai.rss", FEEDLY)
    _poll(client, "/topics/ai.rss", INOREADER)
    _flush(app)
    data = _stats(client)
    for feed in ("all", "topic:ai", "provider:techcrunch.com"):
        assert _feed(data, feed)["direct"] == 1, feed
    assert _feed(data, "provider:techcrunch.com")["subscribers"] == 1
    assert _feed(data, "topic:ai")["subscribers"] == 1 + 123 + 12
    (today,) = data["days"]
    assert today["direct"] == 1
    assert today["aggregators"] == {"Feedly": 123, "Inoreader": 12}
    assert today["subscribers"] == 1 + 123 + 12
    assert today["polls"] == 3 + 1 + 3
    page = lxml.html.fromstring(client.get("/stats").data)
    (row,) = page.xpath("//table[@id='days']/tbody/tr")
    assert [td.text_content() for td in row.xpath("td")][1:3] == ["136", "1"]


def test_a_closed_day_keeps_its_distinct_readers(tmp_path: Path) -> None:
    db = StatsDB(tmp_path / "stats.sqlite3", retention_days=30)
    db.initialize()
    first, second = date(2026, 11, 1), date(2026, 11, 2)
    reader, other = ("192.0.2.1", "newsboat/2.36"), ("192.0.2.2", "newsboat/2.36")
    feeds = {"all": {reader}, "topic:ai": {reader, other}, "topic:azure": {reader}}
    db.write(first, Batch(polls=Counter(dict.fromkeys(feeds, 1)), direct=feeds))
    assert db.read_direct_readers(first) == {first.isoformat(): 2}
    db.write(second, Batch(polls=Counter(all=1), direct={"all": {reader}}))  # closes the first
    assert db.read_direct_readers(first) == {first.isoformat(): 2, second.isoformat(): 1}
    days = db.read(first)
    assert [(d.day, d.feed, d.direct) for d in days if d.day == first.isoformat()] == [
        ("2026-11-01", "all", 1),
        ("2026-11-01", "topic:ai", 2),
        ("2026-11-01", "topic:azure", 1),
    ]
    site = site_days(days, db.read_direct_readers(first))
    assert [(d.day, d.direct, d.subscribers, d.polls) for d in site] == [
        ("2026-11-01", 2, 2, 3),
        ("2026-11-02", 1, 1, 1),
    ]
    # A day closed before the site's count was kept: the largest feed's, a lower bound.
    assert site_days(days, {})[0].direct == 2


def test_stats_page_draws_an_svg_chart_under_a_strict_policy(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path)
    client = app.test_client()
    _poll(client, "/feed.rss", FEEDLY)
    _flush(app)
    response = client.get("/stats")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<svg" in page and "<script" not in page
    assert "Feedly: 123" in page
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_stats_and_metrics_are_for_trusted_addresses_unless_public(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    client = _app(make_app, seeds_dir, tmp_path).test_client()
    for path in ("/stats", "/stats.json", "/metrics"):
        assert client.get(path, environ_base=UNTRUSTED).status_code == 403
        assert client.get(path).status_code == 200  # 127.0.0.1
    public = _app(
        make_app, seeds_dir, tmp_path / "public", stats_public=True, metrics_public=True
    ).test_client()
    for path in ("/stats", "/stats.json", "/metrics"):
        assert public.get(path, environ_base=UNTRUSTED).status_code == 200


def test_metrics_count_requests_cache_results_and_renders(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path)
    client = app.test_client()
    for _ in range(3):
        _poll(client, "/topics/ai.rss", FEEDLY)
    etag = client.get("/topics/ai.atom").headers["ETag"]
    client.get("/topics/ai.atom", headers={"If-None-Match": etag})
    _flush(app)
    text = client.get("/metrics").get_data(as_text=True)
    assert _sample(text, 'feedserver_requests_total{format="rss",kind="topic",status="200"}') == 3
    assert _sample(text, 'feedserver_requests_total{format="atom",kind="topic",status="304"}') == 1
    assert _sample(text, 'feedserver_cache_lookups_total{result="miss"}') == 2
    assert _sample(text, 'feedserver_cache_lookups_total{result="hit"}') == 3
    assert _sample(text, "feedserver_render_seconds_count") == 2
    assert _sample(text, "feedserver_articles") == 2  # of five files, two are published
    assert _sample(text, "feedserver_reload_files") == 5
    assert _sample(text, 'feedserver_subscribers{feed="topic:ai"}') == 123 + 1  # + this client


def test_a_burst_of_unconditional_polls_goes_through_then_429(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path, polite_polling=True, reload_interval=300)
    client = app.test_client()
    first = _poll(client, "/topics/ai.rss", "Miniflux/2.1")
    assert first.status_code == 200
    for _ in range(BURST - 1):  # curl twice, a reader subscribing then reloading: all fine
        assert _poll(client, "/topics/ai.rss", "Miniflux/2.1").status_code == 200
    again = _poll(client, "/topics/ai.rss", "Miniflux/2.1")
    assert again.status_code == 429
    # The feed's freshness hint (a day, for articles of 2020) is no limit: the wait is
    # bounded by reload_interval, the soonest anything can change.
    hint = int(re.search(r"max-age=(\d+)", first.headers["Cache-Control"]).group(1))  # type: ignore[union-attr]
    assert hint > 80_000
    assert 1 <= int(again.headers["Retry-After"]) <= 300
    assert again.headers["Cache-Control"] == "no-store"
    etag = first.headers["ETag"]
    conditional = _poll(client, "/topics/ai.rss", "Miniflux/2.1", **{"If-None-Match": etag})
    assert conditional.status_code == 304  # conditional polls are never limited
    assert _poll(client, "/topics/ai.atom", "Miniflux/2.1").status_code == 200  # another feed
    assert _poll(client, "/topics/ai.rss", "Miniflux/2.1", "192.0.2.77").status_code == 200
    for _ in range(BURST + 1):  # aggregators, pages and browsers opening a feed: never limited
        assert _poll(client, "/topics/ai.rss", FEEDLY).status_code == 200
        assert _poll(client, "/topics/ai", "Firefox").status_code == 200
        html_first = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
        assert _poll(client, "/topics/ai.rss", "Firefox", **html_first).status_code == 200
    _flush(app)
    assert _feed(_stats(client), "topic:ai")["limited"] == 1
    assert (
        _sample(client.get("/metrics").get_data(as_text=True), "feedserver_limited_requests_total")
        == 1
    )


def test_each_feed_with_its_canonical_query_has_its_own_allowance(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = _app(make_app, seeds_dir, tmp_path, polite_polling=True)
    client = app.test_client()

    def spend(path: str) -> None:
        for _ in range(BURST):
            assert _poll(client, path, "curl/8.5.0").status_code == 200, path
        assert _poll(client, path, "curl/8.5.0").status_code == 429, path

    spend("/topics/ai.atom?limit=1")
    # Its next page (its own rel="next"), the whole feed, a search: feeds of their own.
    first = _poll(client, "/topics/ai.atom?limit=1", "curl/8.5.0", **{"If-None-Match": "x"})
    assert 'href="http://feeds.test/topics/ai.atom?limit=1&amp;page=2" rel="next"' in first.text
    for path in ("/topics/ai.atom?limit=1&page=2", "/topics/ai.atom", "/topics/ai.atom?q=cloud"):
        assert _poll(client, path, "curl/8.5.0").status_code == 200, path
    spend("/feed.rss?q=cloud")
    assert _poll(client, "/feed.rss?q=chip", "curl/8.5.0").status_code == 200
    assert _poll(client, "/feed.rss?topic=ai", "curl/8.5.0").status_code == 200
    # Parameters the server ignores make no new feed, and the order of the known ones none.
    spend("/topics/ai.rss?limit=5&page=1")
    for path in ("/topics/ai.rss?utm_source=x&limit=5&page=1", "/topics/ai.rss?page=1&limit=5"):
        assert _poll(client, path, "curl/8.5.0").status_code == 429, path


def test_polite_polling_can_be_turned_off(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    client = _app(make_app, seeds_dir, tmp_path, polite_polling=False).test_client()
    assert all(_poll(client, "/feed.rss", "curl/8").status_code == 200 for _ in range(5))


def test_a_broken_stats_database_never_stops_serving(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    app = make_app(seeds_dir, base_url=BASE, stats_db=str(blocker / "stats.sqlite3"))
    client = app.test_client()
    assert client.get("/feed.rss").status_code == 200
    _flush(app)
    health = client.get("/healthz").get_json()
    assert health["stats"] == "failing"
    assert client.get("/feed.atom").status_code == 200


def _sample(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition."""
    pattern = re.escape(name) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"{name} not in:\n{text}"
    return float(found.group(1))


# --- under a real gunicorn --------------------------------------------------------------


def _get(
    server: GunicornServer, path: str, agent: str, source: str = "127.0.0.1", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers={"User-Agent": agent, **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _server_stats(server: GunicornServer) -> dict[str, Any]:
    status, _, body = _get(server, "/stats.json", "test")
    assert status == 200
    data: dict[str, Any] = json.loads(body)
    return data


def test_audience_under_gunicorn_with_three_workers(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path, tmp_path: Path
) -> None:
    env = {
        "FEEDSERVER_POLITE_POLLING": "true",
        "FEEDSERVER_STATS_DB": str(tmp_path / "stats.sqlite3"),
        "FEEDSERVER_STATS_FLUSH_SECONDS": "1",
        "FEEDSERVER_HEALTH_DETAILS_FROM": "127.0.0.1",
    }
    args = ("-c", "config/gunicorn.conf.py")
    server = start_gunicorn(seeds_dir, *args, env=env, workers=3)
    # A reader polling unconditionally ten times a second is told to slow down, whichever
    # worker answers, once its burst is spent...
    statuses = []
    for _ in range(20):
        status, headers, _ = _get(server, "/topics/ai.rss", "Miniflux/2.1")
        statuses.append(status)
        if status == 429:
            assert 1 <= int(headers["Retry-After"]) <= 60
        time.sleep(0.1)
    assert statuses == [200] * BURST + [429] * (20 - BURST)
    # ... while a conditional one never is.
    _, headers, _ = _get(server, "/topics/ai.atom", "FreshRSS/1.23")
    for _ in range(20):
        status, _, _ = _get(
            server, "/topics/ai.atom", "FreshRSS/1.23", **{"If-None-Match": headers["ETag"]}
        )
        assert status == 304
        time.sleep(0.1)
    # Aggregators and plain readers, spread over the workers by the kernel.
    for agent in (FEEDLY, FEEDBIN, OLD_READER, INOREADER, NEWSBLUR):
        for _ in range(3):
            assert _get(server, "/topics/ai.rss", agent)[0] == 200
    for agent in READERS:
        assert _get(server, "/topics/ai.json", agent)[0] == 200
    expected_subscribers = 123 + 42 + 4 + 12 + 5 + len(READERS) + 2  # + Miniflux and FreshRSS

    def counted() -> bool:
        ai = _feed(_server_stats(server), "topic:ai")
        return bool(ai["subscribers"] == expected_subscribers)

    _wait_for(counted, "the counts of every worker in /stats.json")
    ai = _feed(_server_stats(server), "topic:ai")
    assert ai["limited"] == 20 - BURST and ai["direct"] == len(READERS) + 2

    # /metrics adds every worker up.
    def metrics_total() -> float:
        _, _, body = _get(server, "/metrics", "test")
        text = body.decode()
        return _sample(text, 'feedserver_requests_total{format="rss",kind="topic",status="200"}')

    _wait_for(lambda: metrics_total() == BURST + 15, "request counts summed across workers")
    _, _, body = _get(server, "/metrics", "test")
    assert _sample(body.decode(), 'feedserver_subscribers{feed="topic:ai"}') == expected_subscribers
    assert _sample(body.decode(), "feedserver_limited_requests_total") == 20 - BURST
    # Another address is refused the figures.
    for path in ("/stats", "/stats.json", "/metrics"):
        assert _get(server, path, "curl/8", source="127.0.0.2")[0] == 403
    # The access log names the response time, the cache result and the feed.
    log = server.output()
    assert re.search(
        r'"GET /topics/ai\.rss HTTP/1\.1" 200 \d+ .*\d+ms cache=(hit|miss) feed=topic:ai', log
    )
    # The counts survive a restart.
    server.stop()
    again = start_gunicorn(seeds_dir, *args, env=env, workers=3)
    ai = _feed(_server_stats(again), "topic:ai")
    assert ai["subscribers"] == expected_subscribers


def test_gunicorn_keeps_serving_with_an_unwritable_stats_database(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {
        "FEEDSERVER_STATS_DB": str(blocker / "stats.sqlite3"),
        "FEEDSERVER_STATS_FLUSH_SECONDS": "1",
    }
    server = start_gunicorn(seeds_dir, env=env, workers=2)
    for _ in range(5):
        assert server.fetch("/feed.rss")[0] == 200
    assert "cannot be opened" in server.output()

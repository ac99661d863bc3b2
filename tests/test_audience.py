"""Who polls: aggregators' User-Agents, feeds of paths, the stats database and the counting
of polls (without a server)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from feedserver.audience import DIRECT, MAX_SUBSCRIBERS, feed_of, identify, is_feed_document
from feedserver.chart import daily_chart
from feedserver.polls import PollRecorder
from feedserver.stats_figures import latest_by_feed
from feedserver.statsdb import (
    MAX_AGGREGATORS_PER_FEED,
    MAX_PENDING_POLLERS,
    MAX_SUBSCRIPTIONS,
    NEW_AGGREGATOR_MAX,
    Batch,
    StatsDB,
    StatsError,
)

# Real User-Agent strings, as each service documents or sends them.
AGGREGATOR_AGENTS = [
    ("Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; )", "Feedly", 123, ""),
    (
        "Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; "
        "12 subscribers; )",
        "Inoreader",
        12,
        "",
    ),
    (
        "NewsBlur Feed Fetcher - 5 subscribers - http://www.newsblur.com/site/1234/example "
        "(Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) AppleWebKit/534.48.3 (KHTML, like "
        "Gecko) Version/5.1 Safari/534.48.3)",
        "NewsBlur",
        5,
        "1234",
    ),
    ("NewsBlur Feed Fetcher - 1 subscriber - https://www.newsblur.com", "NewsBlur", 1, ""),
    ("Feedbin feed-id:1373711 - 42 subscribers", "Feedbin", 42, "1373711"),
    (
        "Mozilla/5.0 (compatible; theoldreader.com; 4 subscribers; feed-id=98765)",
        "The Old Reader",
        4,
        "98765",
    ),
    (
        "Mozilla/5.0 (compatible; BazQux/2.4; +https://bazqux.com/fetcher; 3 subscribers)",
        "BazQux",
        3,
        "",
    ),
    ("Bloglovin/1.0 (rv:1; +https://www.bloglovin.com; 2 subscribers)", "Bloglovin", 2, ""),
    (
        "Netvibes (crawler; http://www.netvibes.com; 7 subscribers; feedID: 4242)",
        "Netvibes",
        7,
        "4242",
    ),
    (
        "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 1 subscribers; "
        "feed-id=1368044458445856733)",
        "Google Feedfetcher",
        1,
        "1368044458445856733",
    ),
    ("SomeReader/2.0 (+https://reader.example; 9 subscribers)", "SomeReader", 9, ""),
]
DIRECT_AGENTS = [
    "newsboat/2.36.0 (Linux x86_64)",
    "NetNewsWire (RSS Reader; https://netnewswire.com/)",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; Miniflux/2.1.0; +https://miniflux.app)",
    "FreshRSS/1.23.1 (Linux; https://freshrss.org)",
    "",
]


@pytest.mark.parametrize(("agent", "name", "count", "feed_id"), AGGREGATOR_AGENTS)
def test_aggregators_report_their_subscribers(
    agent: str, name: str, count: int, feed_id: str
) -> None:
    poller = identify(agent)
    assert (poller.aggregator, poller.subscribers, poller.feed_id) == (name, count, feed_id)
    assert poller.is_aggregator


@pytest.mark.parametrize("agent", DIRECT_AGENTS)
def test_readers_without_counts_are_direct_pollers(agent: str) -> None:
    assert identify(agent) is DIRECT


def test_absurd_counts_are_capped_and_long_agents_cut() -> None:
    assert (
        identify("Feedly/1.0 (999999999999 subscribers)").subscribers
        == MAX_SUBSCRIBERS
        == 1_000_000
    )
    assert identify("x" * 10_000 + " 5 subscribers") is DIRECT


@pytest.mark.parametrize(
    ("path", "feed"),
    [
        ("/", "all"),
        ("/feed.rss", "all"),
        ("/feed.json", "all"),
        ("/topics/ai", "topic:ai"),
        ("/topics/ai.atom", "topic:ai"),
        ("/providers/techcrunch.com.rss", "provider:techcrunch.com"),
        ("/providers/techcrunch.com", "provider:techcrunch.com"),
        ("/topics.json", None),
        ("/feeds.opml", None),
        ("/healthz", None),
        ("/topics/a/b.rss", None),
        ("/static/style.css", None),
    ],
)
def test_feed_of_groups_every_format_and_the_page(path: str, feed: str | None) -> None:
    assert feed_of(path) == feed


def test_feed_documents_are_the_reader_formats_only() -> None:
    assert is_feed_document("/topics/ai.rss")
    assert not is_feed_document("/topics/ai")
    assert not is_feed_document("/topics.json")


def _db(tmp_path: Path, retention: int = 30) -> StatsDB:
    db = StatsDB(tmp_path / "stats.sqlite3", retention)
    db.initialize()
    return db


def test_direct_pollers_are_counted_without_storing_addresses(tmp_path: Path) -> None:
    db = _db(tmp_path)
    today = date(2026, 11, 23)
    batch = Batch()
    batch.polls["topic:ai"] = 5
    batch.direct["topic:ai"] = {("198.51.100.7", "newsboat/2.36"), ("198.51.100.8", "curl/8")}
    db.write(today, batch)
    again = Batch()
    again.polls["topic:ai"] = 1
    again.direct["topic:ai"] = {("198.51.100.7", "newsboat/2.36")}  # the same poller
    db.write(today, again)
    (figures,) = db.read(today)
    assert (figures.polls, figures.direct, figures.subscribers) == (6, 2, 2)
    raw = (tmp_path / "stats.sqlite3").read_bytes()
    for path in tmp_path.iterdir():
        raw += path.read_bytes()
    assert b"198.51.100" not in raw and b"newsboat" not in raw


def test_a_finished_day_keeps_only_its_count(tmp_path: Path) -> None:
    db = _db(tmp_path)
    yesterday, today = date(2026, 11, 22), date(2026, 11, 23)
    batch = Batch()
    batch.polls["all"] = 3
    batch.direct["all"] = {("a", "x"), ("b", "x"), ("c", "x")}
    db.write(yesterday, batch)
    db.write(today, Batch(polls=Counter(all=1), direct={"all": {("a", "x")}}))
    days = db.read(yesterday)
    assert [(d.day, d.direct) for d in days] == [("2026-11-22", 3), ("2026-11-23", 1)]
    with sqlite3.connect(tmp_path / "stats.sqlite3") as connection:
        assert connection.execute("SELECT DISTINCT day FROM pollers").fetchall() == [
            ("2026-11-23",)
        ]
        assert connection.execute("SELECT day FROM day_keys").fetchall() == [("2026-11-23",)]


def test_old_days_are_dropped_after_the_retention(tmp_path: Path) -> None:
    db = _db(tmp_path, retention=7)
    today = date(2026, 11, 23)
    db.write(today - timedelta(days=10), Batch(polls=Counter(all=1)))
    db.write(today, Batch(polls=Counter(all=2)))
    assert [d.day for d in db.read(today - timedelta(days=30))] == ["2026-11-23"]


def test_aggregators_keep_their_latest_count_per_subscription(tmp_path: Path) -> None:
    db = _db(tmp_path)
    today = date(2026, 11, 23)
    batch = Batch()
    batch.polls["topic:ai"] = 4
    batch.reports[("topic:ai", "Feedly", "/topics/ai.rss")] = (10, 100.0)
    batch.reports[("topic:ai", "Feedly", "/topics/ai.atom")] = (3, 100.0)
    batch.reports[("topic:ai", "Feedbin", "1")] = (5, 100.0)
    batch.reports[("topic:ai", "Feedbin", "2")] = (6, 100.0)
    db.write(today, batch)
    later = Batch()
    later.reports[("topic:ai", "Feedly", "/topics/ai.rss")] = (12, 200.0)
    db.write(today, later)
    older = Batch()  # a worker's older report arriving late does not win
    older.reports[("topic:ai", "Feedbin", "1")] = (1, 50.0)
    db.write(today, older)
    (figures,) = latest_by_feed(db.read(today)).values()
    assert figures.aggregators == {"Feedly": 15, "Feedbin": 11}
    assert figures.subscribers == 26


def test_an_unusable_database_is_a_stats_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StatsError, match="cannot be opened"):
        StatsDB(blocker / "stats.sqlite3", 30).initialize()
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"garbage" * 1000)
    with pytest.raises(StatsError):
        StatsDB(corrupt, 30).initialize()


def _environ(path: str, agent: str, address: str = "192.0.2.1") -> dict[str, str]:
    return {"PATH_INFO": path, "HTTP_USER_AGENT": agent, "REMOTE_ADDR": address}


def test_recorder_counts_polls_per_feed_and_day(tmp_path: Path) -> None:
    db = _db(tmp_path)
    now = 1_795_000_000.0  # 2026-11-17
    recorder = PollRecorder(db, None, 5, clock=lambda: now)
    recorder._thread = object()  # type: ignore[assignment]  # drained by hand below
    feedly = AGGREGATOR_AGENTS[0][0]
    for status in ("200", "304", "304"):
        recorder.note(_environ("/topics/ai.rss", feedly), status)
    recorder.note(_environ("/topics/ai.atom", "newsboat/2.36", "192.0.2.1"), "200")
    recorder.note(_environ("/topics/ai", "Mozilla/5.0 Firefox", "192.0.2.2"), "200")
    recorder.note(_environ("/topics/ai.rss", "curl/8", "192.0.2.3"), "429")
    recorder.note(_environ("/topics/ai.rss", "curl/8", "192.0.2.3"), "404")
    recorder.note(_environ("/healthz", "curl/8"), "200")
    recorder.flush()
    (figures,) = db.read(date(2026, 11, 17))
    assert figures.feed == "topic:ai"
    assert (figures.polls, figures.limited, figures.direct) == (5, 1, 2)
    assert figures.aggregators == {"Feedly": 123}
    assert figures.subscribers == 125


def test_recorder_keeps_serving_when_the_database_fails(tmp_path: Path) -> None:
    db = _db(tmp_path)
    recorder = PollRecorder(db, None, 5)
    recorder._thread = object()  # type: ignore[assignment]
    (tmp_path / "stats.sqlite3").write_bytes(b"broken" * 2000)
    recorder.note(_environ("/feed.rss", "curl/8"), "200")
    recorder.flush()
    assert recorder.error is not None and "stats database" in recorder.error


def test_chart_is_an_accessible_inline_svg() -> None:
    series = [(date(2026, 11, day), day * 2) for day in range(1, 8)]
    svg = str(daily_chart(series, "Subscribers <per> day"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "Subscribers &lt;per&gt; day" in svg and "<script" not in svg and "style=" not in svg
    assert svg.count("<rect") == 7 and "2026-11-07: 14" in svg


def _report(db: StatsDB, day: date, agent: str, feed: str = "topic:ai", moment: float = 0) -> None:
    poller = identify(agent)
    batch = Batch(polls=Counter({feed: 1}))
    subscription = poller.feed_id or "/topics/ai.rss"
    batch.note_report((feed, poller.aggregator, subscription), poller.subscribers, moment)
    db.write(day, batch)


def _aggregators(db: StatsDB, day: date, feed: str = "topic:ai") -> dict[str, int]:
    return next(d.aggregators for d in db.read(day) if d.day == day.isoformat() and d.feed == feed)


def test_a_claim_far_from_an_aggregators_history_is_held_to_it(tmp_path: Path) -> None:
    db = _db(tmp_path)
    first = date(2026, 11, 20)
    feedly = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {} subscribers; )"
    _report(db, first, feedly.format(900))
    _report(db, first + timedelta(days=1), feedly.format(5_000))  # within ten times: taken
    assert _aggregators(db, first + timedelta(days=1)) == {"Feedly": 5_000}
    third = first + timedelta(days=2)
    _report(db, third, feedly.format(5_000), moment=1)
    _report(db, third, feedly.format(0), moment=2)  # anyone can send Feedly's User-Agent
    assert _aggregators(db, third) == {"Feedly": 500}
    _report(db, third, feedly.format(90_000_000), moment=3)
    assert _aggregators(db, third) == {"Feedly": 50_000}
    # An aggregator never seen before starts small, whatever it claims.
    _report(db, third, "Bot/1 (+https://bot.example; 100000000 subscribers)", moment=4)
    assert _aggregators(db, third)["Bot"] == 1_000


def test_made_up_aggregators_are_bounded_and_the_known_ones_kept(
    tmp_path: Path,
) -> None:
    db = _db(tmp_path)
    today = date(2026, 11, 23)
    _report(db, today, AGGREGATOR_AGENTS[0][0])  # Feedly, 123
    _report(db, today, AGGREGATOR_AGENTS[1][0])  # Inoreader, 12
    recorder = PollRecorder(db, None, 5, clock=lambda: 1_795_400_000.0)  # 2026-11-23
    recorder._thread = object()  # type: ignore[assignment]  # drained by hand below
    for number in range(400):
        agent = f"Bot{number}/1 (100000000 subscribers)"
        recorder.note(_environ("/topics/ai.rss", agent), "200")
    for number in range(200):  # one aggregator, many made-up subscriptions
        agent = f"Feedbin feed-id:{number} - 5 subscribers"
        recorder.note(_environ("/topics/ai.rss", agent), "200")
    recorder.flush()
    aggregators = _aggregators(db, today)
    assert len(aggregators) == MAX_AGGREGATORS_PER_FEED
    assert aggregators["Feedly"] == 123 and aggregators["Inoreader"] == 12
    assert aggregators["Feedbin"] == MAX_SUBSCRIPTIONS * 5
    bots = [count for name, count in aggregators.items() if name.startswith("Bot")]
    assert len(bots) == MAX_AGGREGATORS_PER_FEED - 3 and max(bots) == NEW_AGGREGATOR_MAX
    (figures,) = db.read(today)
    assert figures.subscribers <= 123 + 12 + 250 + 17 * 1_000  # not 4e10
    with sqlite3.connect(tmp_path / "stats.sqlite3") as connection:
        stored = connection.execute("SELECT count(*) FROM aggregators").fetchone()[0]
    assert stored == 2 + MAX_SUBSCRIPTIONS + len(bots)


def test_counts_a_locked_database_cannot_take_are_kept_bounded(tmp_path: Path) -> None:
    db = _db(tmp_path)
    recorder = PollRecorder(db, None, 5, clock=lambda: 1_795_400_000.0)  # 2026-11-23
    recorder._thread = object()  # type: ignore[assignment]  # drained by hand below
    locker = sqlite3.connect(tmp_path / "stats.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    polls = MAX_PENDING_POLLERS + 500
    for number in range(polls):
        recorder.note(_environ("/feed.rss", f"Reader/{number}"), "200")
    recorder.flush()
    assert recorder.error is not None and "locked" in recorder.error
    recorder.note(_environ("/feed.rss", AGGREGATOR_AGENTS[0][0]), "200")
    recorder.flush()  # still locked: merged with what is held
    locker.execute("COMMIT")
    locker.close()
    recorder.flush()
    (figures,) = db.read(date(2026, 11, 23))
    assert figures.polls == polls + 1  # every poll, none dropped
    assert figures.direct == MAX_PENDING_POLLERS  # the pollers held are bounded
    assert figures.aggregators == {"Feedly": 123}
    assert recorder.error is None

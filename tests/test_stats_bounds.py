"""The audience figures stay bounded whatever names clients make up: polls of topics that do
not exist count for nothing, a union is counted under its canonical spelling and a day keeps
a bounded number of them, and /stats, /stats.json and /metrics list a bounded number of
feeds. Under a real gunicorn, side by side with a server that saw a few readers only."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import yaml

from feedserver.politeness import BURST
from feedserver.stats_views import FEEDS_PER_PAGE, METRIC_FEEDS
from feedserver.statsdb import (
    MAX_FEEDS_PER_DAY,
    MAX_UNIONS_PER_DAY,
    OTHER_FEED,
    Batch,
    StatsDB,
)

from .conftest import ROOT, GunicornServer, seed_fields, timed_get

GUNICORN_CONF = str(ROOT / "config" / "gunicorn.conf.py")
TOPICS = 30  # 435 unions of two: more than a day keeps
RANDOM_NAMES = 5_000
REFUSED_NAMES = 300  # of them, polled past the burst: 429s of feeds that do not exist


def _get(port: int, path: str, agent: str = "curl/8.5.0") -> tuple[int, bytes, float]:
    return timed_get(port, path, agent)


def _seeds(folder: Path) -> Path:
    seeds = folder / "seeds"
    seeds.mkdir()
    for number in range(TOPICS):
        fields = seed_fields(f"t{number}.yaml", topics=[f"Topic {number:02d}"])
        (seeds / f"t{number}.yaml").write_text(yaml.safe_dump(fields), encoding="utf-8")
    return seeds


def _server(start: Callable[..., GunicornServer], seeds: Path, database: Path) -> GunicornServer:
    env = {
        "FEEDSERVER_STATS_DB": str(database),
        "FEEDSERVER_STATS_FLUSH_SECONDS": "1",
        "FEEDSERVER_POLITE_POLLING": "true",
    }
    return start(seeds, "-c", GUNICORN_CONF, env=env, workers=2)


def _rows(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT feed FROM polls")]


def _settled(database: Path, polls: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        with sqlite3.connect(database) as db:
            counted = db.execute("SELECT coalesce(sum(polls), 0) FROM polls").fetchone()[0]
        if counted >= polls:
            return
        assert time.monotonic() < deadline, f"{counted} of {polls} polls counted"
        time.sleep(0.3)


def _figures(port: int) -> tuple[int, float, int]:
    """(size of /stats.json, best time of /stats of three, feedserver_subscribers labels)."""
    status, body, _ = _get(port, "/stats.json")
    assert status == 200
    times = []
    for _ in range(3):
        status, _, took = _get(port, "/stats")
        assert status == 200
        times.append(took)
    _, metrics, _ = _get(port, "/metrics")
    labels = len(re.findall(r"^feedserver_subscribers\{", metrics.decode(), re.MULTILINE))
    return len(body), min(times), labels


def test_made_up_names_and_many_unions_leave_the_figures_bounded(
    start_gunicorn: Callable[..., GunicornServer], tmp_path: Path
) -> None:
    seeds = _seeds(tmp_path)
    small_db, attacked_db = tmp_path / "small.sqlite3", tmp_path / "attacked.sqlite3"
    small = _server(start_gunicorn, seeds, small_db)
    attacked = _server(start_gunicorn, seeds, attacked_db)
    topics = [f"topic-{number:02d}" for number in range(TOPICS)]
    for port in (small.port, attacked.port):  # a few readers of a few feeds, on both
        for number, topic in enumerate(topics[:5]):
            assert _get(port, f"/topics/{topic}.rss", f"Reader/{number}")[0] == 200
    _settled(small_db, 5)

    names = [secrets.token_hex(6) for _ in range(RANDOM_NAMES)]
    paths = [f"/topics/{name}.rss" for name in names]
    paths += [f"/topics/{name}.atom" for name in names[:REFUSED_NAMES] for _ in range(BURST + 1)]
    pairs = list(itertools.combinations(topics, 2))
    paths += [f"/topics/{b}+{a}.json" for a, b in pairs]  # another order: a 301
    paths += [f"/topics/{a}+{b}.json" for a, b in pairs]  # the union itself: served
    with ThreadPoolExecutor(4) as pool:
        statuses = Counter(pool.map(lambda path: _get(attacked.port, path)[0], paths))
    # The polling table is lossy by design (a slot two keys share lets a poll through).
    assert statuses[429] > REFUSED_NAMES * 0.9
    assert statuses[404] + statuses[429] == RANDOM_NAMES + REFUSED_NAMES * (BURST + 1)
    assert (statuses[301], statuses[200]) == (len(pairs), len(pairs))
    _settled(attacked_db, 5 + len(pairs))
    time.sleep(2.5)  # a last flush of every worker

    rows = _rows(attacked_db)
    assert not set(rows) & {f"topic:{name}" for name in names}  # made-up names: never counted
    unions = [feed for feed in rows if "+" in feed]
    assert len(unions) == MAX_UNIONS_PER_DAY and OTHER_FEED in rows
    assert len(rows) == 5 + MAX_UNIONS_PER_DAY + 1
    with sqlite3.connect(attacked_db) as db:
        assert db.execute(
            "SELECT polls, limited FROM polls WHERE feed = ?", (OTHER_FEED,)
        ).fetchone() == (len(pairs) - MAX_UNIONS_PER_DAY, 0)
        assert db.execute("SELECT sum(limited) FROM polls").fetchone()[0] == 0

    small_size, small_time, small_labels = _figures(small.port)
    size, took, labels = _figures(attacked.port)
    print(
        f"rows {len(_rows(small_db))} vs {len(rows)}; /stats.json {small_size} vs {size} bytes; "
        f"/stats {small_time * 1000:.1f} vs {took * 1000:.1f} ms; labels {small_labels} vs {labels}"
    )
    assert small_labels == 5 and labels == METRIC_FEEDS + 1  # the rest as feed="other"
    assert size < 40 * small_size
    assert took < 5 * small_time + 0.05
    page = _get(attacked.port, "/stats")[1].decode()
    assert page.count('<td class="feed">') == FEEDS_PER_PAGE + 1  # the largest, and the rest
    assert f"{len(rows) - FEEDS_PER_PAGE} more feeds, added up" in page
    data = json.loads(_get(attacked.port, "/stats.json")[1])
    assert len(data["feeds"]) == FEEDS_PER_PAGE and data["feed_count"] == len(rows)
    assert data["rest"]["feeds"] == len(rows) - FEEDS_PER_PAGE
    last = json.loads(_get(attacked.port, f"/stats.json?page={data['pages']}")[1])
    assert len(last["feeds"]) == len(rows) - FEEDS_PER_PAGE * (data["pages"] - 1)
    assert _get(attacked.port, f"/stats.json?page={data['pages'] + 1}")[0] == 404
    assert _get(attacked.port, "/stats.json?page=x")[0] == 400


def test_a_day_keeps_a_bounded_number_of_feeds(tmp_path: Path) -> None:
    db = StatsDB(tmp_path / "stats.sqlite3", 30)
    db.initialize()
    day = date(2026, 11, 23)
    feeds = [f"provider:p{number}" for number in range(MAX_FEEDS_PER_DAY + 500)]
    db.write(day, Batch(polls=Counter(dict.fromkeys(feeds, 1))))
    late = Batch(polls=Counter({feeds[0]: 1, "provider:late": 1}))
    late.note_direct("provider:late", ("192.0.2.1", "curl/8"))
    db.write(day, late)
    figures = {d.feed: d for d in db.read(day)}
    assert len(figures) == MAX_FEEDS_PER_DAY + 1
    assert figures[feeds[0]].polls == 2  # a feed of the day goes on counting
    assert figures[OTHER_FEED].polls == 500 + 1 and figures[OTHER_FEED].direct == 1

"""What every feed carries besides its entries, through Flask's test client at
http://feeds.test: topic names as categories, related links, the feed image, the OPML list,
and freshness hints measured from each feed's own publishing rhythm."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.freshness import Freshness, poll_interval
from feedserver.models import Article

BASE = "http://feeds.test"
ICON = f"{BASE}/static/feed-icon.png"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
}
START = datetime(2024, 3, 1, tzinfo=UTC)


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    return client.get(BASE + path, **kwargs)


def xml(response: TestResponse) -> ElementTree.Element:
    assert response.status_code == 200, response.data
    return ElementTree.fromstring(response.data)


# --- categories and related links --------------------------------------------------------


def test_rss_and_atom_carry_the_same_topic_names(client: FlaskClient) -> None:
    rss_item = xml(get(client, "/topics/ai.rss")).find("channel/item")
    assert rss_item is not None
    rss = [(c.text, c.get("domain")) for c in rss_item.findall("category")]
    entry = xml(get(client, "/topics/ai.atom")).find("atom:entry", NS)
    assert entry is not None
    atom = [(c.get("term"), c.get("scheme")) for c in entry.findall("atom:category", NS)]
    expected = [("Microsoft AI", f"{BASE}/topics/microsoft-ai"), ("AI", f"{BASE}/topics/ai")]
    assert rss == atom == expected
    parsed = feedparser.parse(get(client, "/topics/ai.atom").data)
    assert [tag.term for tag in parsed.entries[0].tags] == ["Microsoft AI", "AI"]


def test_atom_entries_link_their_related_coverage(client: FlaskClient) -> None:
    parsed = feedparser.parse(get(client, "/topics/ai.atom").data)
    assert not parsed.bozo
    for entry in parsed.entries:
        related = [(link.href, link.title) for link in entry.links if link.rel == "related"]
        alternate = [link.href for link in entry.links if link.rel == "alternate"]
        assert alternate == [entry.id]
        assert related, entry.id
        # The same coverage the entry's content lists.
        for href, title in related:
            assert f'href="{href}"' in entry.content[0].value.replace("&amp;", "&")
            assert title


def test_related_links_keep_their_titles_escaped(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    related = [{"title": "Q&A <live>", "webUrl": "https://other.example/a?x=1&y=2"}]
    write_seed("a.txt", related=related)
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    entry = xml(get(client, "/feed.atom")).find("atom:entry", NS)
    assert entry is not None
    links = [link.attrib for link in entry.findall("atom:link", NS) if link.get("rel")]
    assert links == [
        {
            "rel": "related",
            "type": "text/html",
            "href": "https://other.example/a?x=1&y=2",
            "title": "Q&A <live>",
        }
    ]
    # RSS has no place for them but the content.
    item = xml(get(client, "/feed.rss")).find("channel/item")
    assert item is not None and [e.tag for e in item if e.tag == "link"] == ["link"]


# --- the feed image -------------------------------------------------------------------


def test_every_format_shows_the_bundled_image(client: FlaskClient) -> None:
    rss = xml(get(client, "/topics/ai.rss"))
    image = rss.find("channel/image")
    assert image is not None
    assert {child.tag: child.text for child in image} == {
        "url": ICON,
        "title": rss.findtext("channel/title"),
        "link": rss.findtext("channel/link"),
        "width": "144",
        "height": "144",
    }
    atom = xml(get(client, "/topics/ai.atom"))
    assert atom.findtext("atom:icon", None, NS) == ICON
    assert atom.findtext("atom:logo", None, NS) == ICON
    feed = json.loads(get(client, "/topics/ai.json").data)
    assert feed["icon"] == feed["favicon"] == ICON
    parsed = feedparser.parse(get(client, "/feed.rss").data)
    assert parsed.feed.image.href == ICON


def test_the_bundled_image_is_served_as_a_png(client: FlaskClient) -> None:
    response = get(client, "/static/feed-icon.png")
    assert response.status_code == 200
    assert response.content_type == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(response.data[16:20]), int.from_bytes(response.data[20:24])
    assert (width, height) == (144, 144)


def test_the_feed_image_setting_replaces_the_bundled_one(
    make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    logo = "https://cdn.example.com/brand/logo.png"
    client = make_app(seeds_dir, base_url=BASE, feed_image=logo).test_client()
    image = xml(get(client, "/feed.rss")).find("channel/image")
    assert image is not None
    assert image.findtext("url") == logo
    assert image.find("width") is None  # its size is not known
    assert xml(get(client, "/feed.atom")).findtext("atom:logo", None, NS) == logo
    assert json.loads(get(client, "/feed.json").data)["icon"] == logo


# --- OPML -------------------------------------------------------------------------------


def test_opml_starts_with_the_all_articles_feed(client: FlaskClient) -> None:
    root = xml(get(client, "/feeds.opml"))
    body = root.find("body")
    assert body is not None
    first = body[0]
    assert first.get("type") == "rss"
    assert first.get("xmlUrl") == f"{BASE}/feed.rss"
    assert first.get("htmlUrl") == f"{BASE}/"
    assert first.get("text") == "All articles — feedserver"
    assert [group.get("text") for group in body[1:]] == ["Topics", "Providers"]


# --- freshness ------------------------------------------------------------------------


def _articles(gaps: list[timedelta]) -> list[Article]:
    articles = []
    moment = START
    for number, gap in enumerate([timedelta(0), *gaps]):
        moment -= gap
        articles.append(
            Article(
                f"https://e.example/{number}", "t", "", moment, None, (), "", "", None, None, True
            )
        )
    return articles


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        ([], 86_400),  # one article: no rhythm yet, poll daily
        ([timedelta(hours=1)] * 5, 3_600),
        ([timedelta(days=7)] * 3, 86_400),  # weekly: clamped to a day
        ([timedelta(seconds=5)] * 9, 60),  # busier than reloads: clamped to reload_interval
        ([timedelta(minutes=10), timedelta(minutes=20), timedelta(days=30)], 1_200),  # median
    ],
)
def test_poll_interval_is_the_median_gap_clamped(gaps: list[timedelta], expected: int) -> None:
    assert poll_interval(_articles(gaps), 60) == expected


def test_poll_interval_looks_at_the_newest_twenty_only() -> None:
    gaps = [timedelta(minutes=5)] * 19 + [timedelta(days=3)] * 40
    assert poll_interval(_articles(gaps), 60) == 300


@pytest.mark.parametrize(
    ("seconds", "ttl", "period", "frequency"),
    [
        (60, 1, "hourly", 60),
        (600, 10, "hourly", 6),
        (3_600, 60, "daily", 24),
        (7_200, 120, "daily", 12),
        (86_400, 1_440, "daily", 1),
        (90, 2, "hourly", 40),
    ],
)
def test_freshness_as_rss_hints(seconds: int, ttl: int, period: str, frequency: int) -> None:
    freshness = Freshness(seconds)
    assert (freshness.ttl_minutes, freshness.update_period) == (ttl, period)
    assert freshness.update_frequency == frequency


@pytest.fixture
def rhythm_client(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> FlaskClient:
    """A busy topic (an article every hour) and a weekly one."""
    for number in range(6):
        moment = START - timedelta(hours=number)
        write_seed(f"busy{number}.txt", topics=["Busy"], publishedDateTime=moment.isoformat())
    for number in range(4):
        moment = START - timedelta(days=7 * number)
        write_seed(f"weekly{number}.txt", topics=["Weekly"], publishedDateTime=moment.isoformat())
    return make_app(tmp_seeds, base_url=BASE, reload_interval=120).test_client()


@pytest.mark.parametrize(
    ("topic", "seconds", "period", "frequency"),
    [("busy", 3_600, "daily", 24), ("weekly", 86_400, "daily", 1)],
)
def test_each_feed_says_how_often_to_poll_it(
    rhythm_client: FlaskClient, topic: str, seconds: int, period: str, frequency: int
) -> None:
    for extension in ("rss", "atom", "json"):
        for _ in range(2):  # rendered, then answered from the cache before Flask
            response = get(rhythm_client, f"/topics/{topic}.{extension}")
            # Shared caches (nginx, a CDN) still revalidate every reload_interval.
            expected = f"public, max-age={seconds}, s-maxage=120"
            assert response.headers["Cache-Control"] == expected
    channel = xml(get(rhythm_client, f"/topics/{topic}.rss")).find("channel")
    assert channel is not None
    assert channel.findtext("ttl") == str(seconds // 60)
    assert channel.findtext("sy:updatePeriod", None, NS) == period
    assert channel.findtext("sy:updateFrequency", None, NS) == str(frequency)
    parsed = feedparser.parse(get(rhythm_client, f"/topics/{topic}.rss").data)
    assert parsed.feed.ttl == str(seconds // 60)
    assert parsed.feed.sy_updateperiod == period


def test_a_weekly_topic_is_polled_less_than_a_busy_one(rhythm_client: FlaskClient) -> None:
    def max_age(path: str) -> int:
        directives = get(rhythm_client, path).headers["Cache-Control"].split(", ")
        return int(next(d for d in directives if d.startswith("max-age=")).partition("=")[2])

    assert max_age("/topics/weekly.rss") > max_age("/topics/busy.rss") >= 120
    # The all-articles feed publishes as often as its busiest part.
    assert max_age("/feed.rss") == max_age("/topics/busy.rss")
    # Pages and listings keep the reload interval.
    assert max_age("/topics/weekly") == max_age("/topics.json") == 120
    assert get(rhythm_client, "/topics.json").headers["Cache-Control"] == "public, max-age=120"


def test_a_feed_as_busy_as_the_reloads_keeps_the_plain_max_age(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    for number in range(3):
        moment = START - timedelta(seconds=30 * number)
        write_seed(f"s{number}.txt", publishedDateTime=moment.isoformat())
    client = make_app(tmp_seeds, base_url=BASE, reload_interval=120).test_client()
    assert get(client, "/feed.rss").headers["Cache-Control"] == "public, max-age=120"

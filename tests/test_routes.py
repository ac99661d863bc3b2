"""The HTTP routes, through Flask's test client, over a copy of the bundled seeds served at
http://feeds.test: feeds in three formats, pages, JSON listings, health, and HTTP manners."""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import feedparser
import lxml.html
import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from feedserver import render
from feedserver.freshness import Freshness
from feedserver.load.fields import article_from_mapping
from feedserver.load.front_matter import front_matter
from feedserver.render import FeedDocument, render_atom, render_json, render_rss
from feedserver.urls import Urls

BASE = "http://feeds.test"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
}
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json",
}
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (\+0000|GMT)$"
)


def _read_seeds() -> dict[str, dict[str, Any]]:
    """Every bundled seed's front matter, read independently of feedserver, by webUrl."""
    seeds = {}
    for path in sorted(SEEDS.iterdir()):
        data = yaml.safe_load(front_matter(path.read_text("utf-8")))
        seeds[data["webUrl"]] = data
    return seeds


RAW = _read_seeds()
PUBLISHED = {url: data for url, data in RAW.items() if data["published"] is True}
HOTHARDWARE = "https://hothardware.com/news/openai-supercomputer-by-microsoft"
TECHCRUNCH = next(url for url in PUBLISHED if url.startswith("https://techcrunch.com/"))
BOTH = [HOTHARDWARE, TECHCRUNCH]  # newest first
FEEDS = {
    "/feed": BOTH,
    "/topics/ai": BOTH,
    "/topics/microsoft-ai": BOTH,
    "/providers/techcrunch.com": [TECHCRUNCH],
    "/providers/hothardware.com": [HOTHARDWARE],
}
FEED_URLS = [(f"{path}.{ext}", ext, FEEDS[path]) for path in FEEDS for ext in CONTENT_TYPES]
XML_FEED_URLS = [item for item in FEED_URLS if item[1] != "json"]


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    """GET at http://feeds.test, so the request URL is the URL the feed names as its own."""
    return client.get(BASE + path, **kwargs)


def xml(response: TestResponse) -> ElementTree.Element:
    return ElementTree.fromstring(response.data)


def entry_urls(response: TestResponse, extension: str) -> list[str]:
    if extension == "json":
        return [item["url"] for item in json.loads(response.data)["items"]]
    root = xml(response)
    if extension == "rss":
        return [item.findtext("link", "") for item in root.iter("item")]
    return [
        entry.find("atom:link", NS).get("href", "")  # type: ignore[union-attr]
        for entry in root.iter(f"{{{NS['atom']}}}entry")
    ]


def parse_feed(response: TestResponse, url: str) -> Any:
    return feedparser.parse(
        response.data,
        response_headers={"content-type": response.content_type, "content-location": url},
    )


# --- feeds over the bundled seeds -------------------------------------------------------


@pytest.mark.parametrize(("path", "extension", "expected"), FEED_URLS)
def test_feed_serves_exactly_its_published_articles(
    client: FlaskClient, path: str, extension: str, expected: list[str]
) -> None:
    response = get(client, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPES[extension]
    assert entry_urls(response, extension) == expected


@pytest.mark.parametrize(("path", "extension", "expected"), XML_FEED_URLS)
def test_feedparser_reads_every_feed_cleanly(
    client: FlaskClient, path: str, extension: str, expected: list[str]
) -> None:
    response = get(client, path)
    parsed = parse_feed(response, BASE + path)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if extension == "rss" else "atom10")
    assert [entry.link for entry in parsed.entries] == expected
    assert [entry.title for entry in parsed.entries] == [RAW[u]["title"] for u in expected]
    assert parsed.feed.title
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [BASE + path]
    for entry in parsed.entries:
        assert entry.published_parsed is not None
        assert entry.author == RAW[entry.link]["provider"]["name"]


def test_topic_feed_is_the_two_published_ai_articles(client: FlaskClient) -> None:
    for extension in CONTENT_TYPES:
        response = get(client, f"/topics/ai.{extension}")
        assert entry_urls(response, extension) == [
            "https://hothardware.com/news/openai-supercomputer-by-microsoft",
            "https://techcrunch.com/2020/05/19/microsoft-says-it-teamed-up-with-openai-to-"
            "build-a-massive-ai-supercomputer-in-azure/",
        ]


@pytest.mark.parametrize(
    "path",
    [
        "/topics/azure.rss",
        "/topics/azure.atom",
        "/topics/azure.json",
        "/topics/azure",
        "/topics/ai-hardware.rss",
        "/providers/geekwire.com.rss",
        "/providers/geekwire.com.atom",
        "/providers/geekwire.com",
        "/providers/computing.co.uk.json",
        "/providers/datacenterknowledge.com.rss",
        "/topics/nope.atom",
        "/providers/nope.example.rss",
        "/nope",
        "/topics/ai.xml",
        "/topics/ai.rss/extra",
    ],
)
def test_unknown_feeds_and_paths_are_404(client: FlaskClient, path: str) -> None:
    response = get(client, path)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert 'File "' not in body


def test_every_feed_parses_as_xml_or_json(client: FlaskClient) -> None:
    for path, extension, _ in FEED_URLS:
        response = get(client, path)
        if extension == "json":
            assert json.loads(response.data)["version"] == "https://jsonfeed.org/version/1.1"
        else:
            assert xml(response).tag in ("rss", f"{{{NS['atom']}}}feed")


# --- nothing unpublished or secret anywhere ---------------------------------------------


def _forbidden() -> list[str]:
    """Every `secured` value, and the titles and URLs of the unpublished articles."""
    values = [data["secured"] for data in RAW.values()]
    for url, data in RAW.items():
        if data["published"] is not True:
            values += [url, data["title"], data["excerpt"]]
    return values


def _forms(value: str) -> set[str]:
    return {
        value,
        html.escape(value),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def _every_route(client: FlaskClient) -> list[str]:
    paths = ["/", "/topics.json", "/providers.json", "/feeds.opml", "/healthz"]
    for listing in ("/topics.json", "/providers.json"):
        for item in get(client, listing).get_json():
            page = item["url"].removeprefix(BASE)
            paths.append(page)
            paths += [feed.removeprefix(BASE) for feed in item["feeds"].values()]
    for extension in CONTENT_TYPES:
        paths += [f"/feed.{extension}", f"/feed.{extension}?limit=1&page=2"]
        paths += [f"/feed.{extension}?q=azure", f"/feed.{extension}?sort=quality"]
    paths += ["/topics/azure.rss", "/topics/azure", "/providers/geekwire.com.json"]
    return paths


def test_unpublished_articles_and_secured_values_appear_in_no_response(
    client: FlaskClient,
) -> None:
    forbidden = _forbidden()
    assert len(forbidden) == 5 + 3 * 3
    paths = _every_route(client)
    assert len(paths) > 30
    for path in paths:
        for accept in ("*/*", "application/json"):
            body = get(client, path, headers={"Accept": accept}).get_data(as_text=True)
            for value in forbidden:
                for form in _forms(value):
                    assert form not in body, f"{path} shows {value[:40]!r}"


def test_amp_urls_are_not_served(client: FlaskClient) -> None:
    amp = [
        data[key] for data in RAW.values() for key in ("ampWebUrl", "cdnAmpWebUrl") if key in data
    ]
    assert amp
    for path, _, _ in FEED_URLS:
        body = get(client, path).get_data(as_text=True)
        assert not [url for url in amp if url in body]
        assert "ampproject" not in body


# --- RSS structure ----------------------------------------------------------------------


def _image(url: str) -> dict[str, Any]:
    image: dict[str, Any] = RAW[url]["images"][0]
    return image


@pytest.mark.parametrize(
    ("query", "self_query"),
    [("", ""), ("?limit=5", "?limit=5"), ("?x=%C3%BC&limit=5&empty=", "?limit=5")],
)
def test_rss_channel(client: FlaskClient, query: str, self_query: str) -> None:
    """The self link carries the feed parameters asked for, and never an unknown one."""
    response = get(client, "/topics/ai.rss" + query)
    channel = xml(response).find("channel")
    assert channel is not None
    assert "AI" in channel.findtext("title", "")
    assert channel.findtext("link") == f"{BASE}/topics/ai"
    assert "AI" in channel.findtext("description", "")
    assert channel.findtext("language") == "en"
    self_links = [
        link.get("href") for link in channel.findall("atom:link", NS) if link.get("rel") == "self"
    ]
    assert self_links == [f"{BASE}/topics/ai.rss{self_query}"]
    last_build = channel.findtext("lastBuildDate", "")
    assert RFC822.match(last_build), last_build
    assert parsedate_to_datetime(last_build) == datetime(2020, 5, 20, 14, 25, tzinfo=UTC)


def test_rss_items(client: FlaskClient) -> None:
    items = xml(get(client, "/topics/ai.rss")).findall("channel/item")
    assert len(items) == 2
    for item in items:
        url = item.findtext("link", "")
        seed = RAW[url]
        assert item.findtext("title") == seed["title"]
        guid = item.find("guid")
        assert guid is not None and guid.text == url
        assert guid.get("isPermaLink") == "true"
        pub_date = item.findtext("pubDate", "")
        assert RFC822.match(pub_date), pub_date
        assert parsedate_to_datetime(pub_date) == seed["publishedDateTime"]
        assert item.findtext("description") == seed["excerpt"]
        content = item.findtext("content:encoded", "", NS)
        assert f'<img src="{html.escape(_image(url)["url"])}"' in content
        assert "Related coverage" in content
        for related in seed["related"]:
            assert f'href="{html.escape(related["webUrl"])}"' in content
            assert html.escape(related["title"]) in content
        assert [c.text for c in item.findall("category")] == seed["topics"]
        assert item.findtext("dc:creator", "", NS) == seed["provider"]["name"]
        source = item.find("source")
        assert source is not None and source.text == seed["provider"]["name"]
        assert source.get("url") == f"{BASE}/providers/{seed['provider']['domain']}.rss"
        for tag in ("media:content", "media:thumbnail"):
            media = item.find(tag, NS)
            assert media is not None, tag
            assert media.get("url") == _image(url)["url"]
            assert media.get("width") == str(_image(url)["width"])
            assert media.get("height") == str(_image(url)["height"])


def test_rss_last_build_date_is_not_now_for_a_provider(client: FlaskClient) -> None:
    channel = xml(get(client, "/providers/techcrunch.com.rss")).find("channel")
    assert channel is not None
    last_build = parsedate_to_datetime(channel.findtext("lastBuildDate", ""))
    assert last_build == datetime(2020, 5, 19, 15, 13, tzinfo=UTC)


# --- Atom structure ---------------------------------------------------------------------


def _atom(tag: str) -> str:
    return f"{{{NS['atom']}}}{tag}"


@pytest.mark.parametrize("query", ["", "?limit=2&page=1"])
def test_atom_feed(client: FlaskClient, query: str) -> None:
    root = xml(get(client, "/topics/ai.atom" + query))
    assert root.tag == _atom("feed")
    assert root.findtext("atom:id", "", NS).startswith(f"{BASE}/topics/ai")
    assert "AI" in root.findtext("atom:title", "", NS)
    updated = datetime.fromisoformat(root.findtext("atom:updated", "", NS))
    assert updated == datetime(2020, 5, 20, 14, 25, tzinfo=UTC)
    links = {link.get("rel", "alternate"): link for link in root.findall("atom:link", NS)}
    assert links["self"].get("href") == f"{BASE}/topics/ai.atom{query}"
    assert links["alternate"].get("href") == f"{BASE}/topics/ai"
    assert links["alternate"].get("type") == "text/html"


def test_atom_entries(client: FlaskClient) -> None:
    entries = xml(get(client, "/topics/ai.atom")).findall("atom:entry", NS)
    assert len(entries) == 2
    for entry in entries:
        url = entry.findtext("atom:id", "", NS)
        seed = RAW[url]
        assert entry.findtext("atom:title", "", NS) == seed["title"]
        link = entry.find("atom:link", NS)
        assert link is not None and link.get("href") == url
        assert link.get("rel", "alternate") == "alternate"
        updated = datetime.fromisoformat(entry.findtext("atom:updated", "", NS))
        assert updated == seed["publishedDateTime"]
        assert entry.findtext("atom:author/atom:name", "", NS) == seed["provider"]["name"]
        assert entry.findtext("atom:author/atom:uri", "", NS) == (
            f"https://{seed['provider']['domain']}"
        )
        content = entry.find("atom:content", NS)
        assert content is not None and content.get("type") == "html"
        assert f'<img src="{html.escape(_image(url)["url"])}"' in (content.text or "")
        assert "Related coverage" in (content.text or "")
        categories = [(c.get("term"), c.get("scheme")) for c in entry.findall("atom:category", NS)]
        assert categories == [
            ("Microsoft AI", f"{BASE}/topics/microsoft-ai"),
            ("AI", f"{BASE}/topics/ai"),
        ]


def test_atom_entries_have_the_excerpt_as_summary(client: FlaskClient) -> None:
    entries = xml(get(client, "/topics/ai.atom")).findall("atom:entry", NS)
    for entry in entries:
        seed = RAW[entry.findtext("atom:id", "", NS)]
        assert entry.findtext("atom:summary", None, NS) == seed["excerpt"]


def test_atom_entry_without_provider_still_has_an_author(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", omit=("provider",))
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    root = xml(get(client, "/feed.atom"))
    (entry,) = root.findall("atom:entry", NS)
    has_author = root.find("atom:author", NS) is not None
    assert has_author or entry.find("atom:author", NS) is not None


def test_minimal_article_has_no_blank_content(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", omit=("excerpt", "provider", "topics"))
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    for entry in xml(get(client, "/feed.atom")).findall("atom:entry", NS):
        content = entry.find("atom:content", NS)
        assert content is None or (content.text or "").strip()
    for item in xml(get(client, "/feed.rss")).iter("item"):
        encoded = item.find("content:encoded", NS)
        assert encoded is None or (encoded.text or "").strip()


def test_article_without_provider_renders(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", omit=("provider", "excerpt", "topics"))
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    for extension in ("rss", "atom"):
        response = get(client, f"/feed.{extension}")
        parsed = parse_feed(response, f"{BASE}/feed.{extension}")
        assert parsed.bozo == 0
        assert [e.link for e in parsed.entries] == ["https://example.com/articles/a"]
    item = xml(get(client, "/feed.rss")).find("channel/item")
    assert item is not None
    assert item.find("source") is None and item.find("dc:creator", NS) is None
    assert json.loads(get(client, "/feed.json").data)["items"][0].get("authors") is None


# --- JSON Feed --------------------------------------------------------------------------


def test_json_feed(client: FlaskClient) -> None:
    response = get(client, "/topics/ai.json?limit=1")
    feed = json.loads(response.data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert "AI" in feed["title"]
    assert feed["home_page_url"] == f"{BASE}/topics/ai"
    assert feed["feed_url"] == f"{BASE}/topics/ai.json?limit=1"
    assert feed["next_url"] == f"{BASE}/topics/ai.json?limit=1&page=2"
    (item,) = feed["items"]
    seed = RAW[HOTHARDWARE]
    assert item["id"] == item["url"] == HOTHARDWARE
    assert item["title"] == seed["title"]
    assert item["summary"] == seed["excerpt"]
    assert item["date_published"] == "2020-05-20T14:25:00Z"
    assert item["image"] == seed["images"][0]["url"]
    assert item["tags"] == ["Microsoft AI", "AI"]
    assert item["authors"] == [{"name": "HotHardware", "url": "https://hothardware.com"}]
    assert "Related coverage" in item["content_html"]


# --- determinism ------------------------------------------------------------------------

STABLE_PATHS = [path for path, _, _ in FEED_URLS] + [
    "/",
    "/topics/ai",
    "/providers/techcrunch.com",
    "/topics.json",
    "/providers.json",
    "/feeds.opml",
    "/feed.rss?limit=1&page=2",
]


def test_same_request_twice_gives_identical_bytes(client: FlaskClient) -> None:
    for path in STABLE_PATHS:
        first, second = get(client, path), get(client, path)
        assert first.data == second.data, path
        assert first.headers["ETag"] == second.headers["ETag"], path


def test_two_apps_give_identical_bytes(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    one = make_app(seeds_dir, base_url=BASE).test_client()
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    for source in seeds_dir.iterdir():
        (other_dir / source.name).write_bytes(source.read_bytes())
    other = make_app(other_dir, base_url=BASE).test_client()
    for path in STABLE_PATHS:
        first, second = get(one, path), get(other, path)
        assert first.data == second.data, path
        assert first.headers["ETag"] == second.headers["ETag"], path


# --- limit and paging -------------------------------------------------------------------


@pytest.fixture
def many_seeds(tmp_seeds: Path, write_seed: Callable[..., Path]) -> Path:
    """51 published articles, one a day, in topic "Bulk"."""
    for day in range(51):
        write_seed(
            f"bulk-{day:02d}.txt",
            publishedDateTime=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=day),
            topics=["Bulk"],
        )
    return tmp_seeds


def test_limit_defaults_to_50(make_app: Callable[..., Flask], many_seeds: Path) -> None:
    client = make_app(many_seeds, base_url=BASE).test_client()
    for path in ("/feed.rss", "/topics/bulk.rss"):
        assert len(xml(get(client, path)).findall("channel/item")) == 50
    assert len(json.loads(get(client, "/feed.json").data)["items"]) == 50
    second = xml(get(client, "/feed.rss?page=2")).findall("channel/item")
    assert len(second) == 1


def test_limit_default_follows_feed_limit(make_app: Callable[..., Flask], many_seeds: Path) -> None:
    client = make_app(many_seeds, base_url=BASE, feed_limit=3).test_client()
    assert len(xml(get(client, "/feed.rss")).findall("channel/item")) == 3
    assert len(xml(get(client, "/feed.atom")).findall("atom:entry", NS)) == 3
    assert len(xml(get(client, "/feed.rss?limit=7")).findall("channel/item")) == 7


def test_paging_over_the_bundled_seeds(client: FlaskClient) -> None:
    first = xml(get(client, "/feed.rss?limit=1"))
    second = xml(get(client, "/feed.rss?limit=1&page=2"))
    assert [i.findtext("link") for i in first.iter("item")] == [HOTHARDWARE]
    assert [i.findtext("link") for i in second.iter("item")] == [TECHCRUNCH]
    links = {link.get("rel"): link.get("href") for link in second.findall("channel/atom:link", NS)}
    assert links["self"] == f"{BASE}/feed.rss?limit=1&page=2"
    assert links["first"] == f"{BASE}/feed.rss?limit=1&page=1"
    assert links["previous"] == f"{BASE}/feed.rss?limit=1&page=1"
    assert links["last"] == f"{BASE}/feed.rss?limit=1&page=2"
    assert "next" not in links
    assert get(client, "/feed.rss?limit=1&page=3").status_code == 404


def test_limit_up_to_max_feed_limit_is_accepted(
    make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    client = make_app(seeds_dir, base_url=BASE, feed_limit=5, max_feed_limit=10).test_client()
    assert get(client, "/feed.rss?limit=10").status_code == 200
    response = get(client, "/feed.rss?limit=11")
    assert response.status_code == 400
    assert "limit" in response.get_data(as_text=True)


BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=abc", "limit"),
    ("limit=1.5", "limit"),
    ("limit=", "limit"),
    ("limit=501", "limit"),
    ("limit=99999999999999999999", "limit"),
    ("limit=1&limit=2", "limit"),
    ("limit=%EF%BC%95", "limit"),
    ("page=0", "page"),
    ("page=-3", "page"),
    ("page=two", "page"),
    ("page=1&page=1", "page"),
    ("sort=random", "sort"),
    ("min_quality=high", "min_quality"),
    ("min_quality=nan", "min_quality"),
]


@pytest.mark.parametrize(("query", "name"), BAD_QUERIES)
@pytest.mark.parametrize("path", ["/feed.rss", "/topics/ai.atom"])
def test_bad_query_is_400_with_plain_message(
    client: FlaskClient, path: str, query: str, name: str
) -> None:
    response = get(client, f"{path}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert f"'{name}'" in body
    assert len(body.strip().splitlines()) == 1
    assert "Traceback" not in body


@pytest.mark.parametrize(("query", "name"), BAD_QUERIES)
@pytest.mark.parametrize("path", ["/feed.rss", "/providers/techcrunch.com.json"])
def test_bad_query_is_400_json_when_asked(
    client: FlaskClient, path: str, query: str, name: str
) -> None:
    response = get(client, f"{path}?{query}", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == 400
    assert f"'{name}'" in body["message"]


def test_filters_and_sorts(client: FlaskClient) -> None:
    def links(query: str) -> list[str]:
        return entry_urls(get(client, f"/feed.json?{query}"), "json")

    assert links("sort=heat") == [TECHCRUNCH, HOTHARDWARE]
    assert links("sort=quality") == [TECHCRUNCH, HOTHARDWARE]
    assert links("sort=date") == BOTH
    assert links("min_quality=100") == [TECHCRUNCH]
    assert links("q=285%2C000-core") == [HOTHARDWARE]
    assert links("q=BUILD+developer") == [TECHCRUNCH]
    assert links("q=no-such-words") == []
    assert links("unknown=1") == BOTH


# --- HTML pages -------------------------------------------------------------------------


def _autodiscovery(response: TestResponse) -> dict[str, str]:
    page = lxml.html.fromstring(response.data)
    return {
        link.get("type"): link.get("href") for link in page.xpath('//head/link[@rel="alternate"]')
    }


@pytest.mark.parametrize(
    ("path", "feed"),
    [
        ("/", "/feed"),
        ("/topics/ai", "/topics/ai"),
        ("/topics/microsoft-ai", "/topics/microsoft-ai"),
        ("/providers/techcrunch.com", "/providers/techcrunch.com"),
    ],
)
def test_html_pages_have_autodiscovery_links(client: FlaskClient, path: str, feed: str) -> None:
    response = get(client, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    body = response.get_data(as_text=True)
    assert '<link rel="alternate" type="application/rss+xml"' in body
    assert _autodiscovery(response) == {
        "application/rss+xml": f"{BASE}{feed}.rss",
        "application/atom+xml": f"{BASE}{feed}.atom",
        "application/feed+json": f"{BASE}{feed}.json",
    }
    for href in _autodiscovery(response).values():
        assert get(client, href.removeprefix(BASE)).status_code == 200


def test_home_page_lists_topics_and_providers_with_counts(client: FlaskClient) -> None:
    page = lxml.html.fromstring(get(client, "/").data)
    rows = {
        item.xpath("string(a)").strip(): item.xpath("string(span)").strip()
        for item in page.xpath("//ul[@class='chips']/li")
    }
    assert rows == {
        "AI": "2 articles",
        "Microsoft AI": "2 articles",
        "HotHardware": "1 article",
        "TechCrunch": "1 article",
    }
    hrefs = set(page.xpath("//a/@href"))
    assert f"{BASE}/topics/ai" in hrefs and f"{BASE}/providers/techcrunch.com" in hrefs
    assert page.xpath("//article//h3/a/@href") == BOTH  # the newest articles
    assert not any(h.startswith(f"{BASE}/topics/azure") or "geekwire" in h for h in hrefs)
    assert "GeekWire" not in page.text_content()
    index = lxml.html.fromstring(get(client, "/topics").data)
    assert f"{BASE}/topics/ai.rss" in index.xpath("//a/@href")
    providers = lxml.html.fromstring(get(client, "/providers").data)
    assert f"{BASE}/providers/techcrunch.com.atom" in providers.xpath("//a/@href")


def test_topic_page_lists_its_articles(client: FlaskClient) -> None:
    page = lxml.html.fromstring(get(client, "/topics/ai").data)
    assert page.xpath("//article//h3/a/@href") == BOTH
    provider_page = lxml.html.fromstring(get(client, "/providers/techcrunch.com").data)
    assert provider_page.xpath("//article//h3/a/@href") == [TECHCRUNCH]


def test_html_escapes_article_text(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed(
        "a.txt",
        title="<script>alert(1)</script> & co",
        excerpt="<img src=x onerror=alert(2)>",
        provider={"name": "<b>Bold</b>", "domain": "bold.example"},
    )
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    for path in ("/", "/topics/testing", "/providers/bold.example"):
        body = get(client, path).get_data(as_text=True)
        assert "<script>" not in body and "<img src=x" not in body and "<b>Bold" not in body
    item = xml(get(client, "/feed.rss")).find("channel/item")
    assert item is not None
    assert item.findtext("title") == "<script>alert(1)</script> & co"
    summary = item.findtext("description", "")
    assert "<img src=x" not in summary and "&lt;img src=x onerror=alert(2)&gt;" in summary
    content = item.findtext("content:encoded", "", NS)
    assert "<img src=x" not in content and "<p>Body text.</p>" in content


# --- JSON listings and health -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/topics.json", [("ai", "AI", 2), ("microsoft-ai", "Microsoft AI", 2)]),
        (
            "/providers.json",
            [("hothardware.com", "HotHardware", 1), ("techcrunch.com", "TechCrunch", 1)],
        ),
    ],
)
def test_listings(client: FlaskClient, path: str, expected: list[tuple[str, str, int]]) -> None:
    response = get(client, path)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    listing = response.get_json()
    assert [(i["slug"], i["name"], i["count"]) for i in listing] == expected
    kind = path.removesuffix(".json")
    for item in listing:
        assert {"slug", "name", "count", "updated", "feeds"} <= set(item)
        assert datetime.fromisoformat(item["updated"]).tzinfo is not None
        assert item["url"] == f"{BASE}{kind}/{item['slug']}"
        for extension in ("rss", "atom", "json"):
            assert item["feeds"][extension] == f"{BASE}{kind}/{item['slug']}.{extension}"


def test_listing_updated_is_newest_article(client: FlaskClient) -> None:
    updated = {i["slug"]: i["updated"] for i in get(client, "/providers.json").get_json()}
    assert datetime.fromisoformat(updated["techcrunch.com"]) == datetime(
        2020, 5, 19, 15, 13, tzinfo=UTC
    )


def test_healthz(client: FlaskClient) -> None:
    response = get(client, "/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    health = response.get_json()
    assert health["status"] == "ok"
    assert health["articles"] == 2
    assert health["topics"] == 2
    assert health["providers"] == 2
    assert health["errors"] == []
    assert datetime.fromisoformat(health["last_reload"]).tzinfo is not None
    assert "no-store" in response.headers["Cache-Control"]


def test_healthz_lists_broken_files(
    make_app: Callable[..., Flask], seeds_dir: Path, write_file: Callable[..., Path]
) -> None:
    write_file("sub/broken.txt", "---\ntitle: [unclosed\n---\n", directory=seeds_dir)
    write_file("empty.md", "", directory=seeds_dir)
    write_file(
        "warn.yaml",
        "title: T\nwebUrl: https://e.com/w\npublishedDateTime: 2020-01-01\n",
        directory=seeds_dir,
    )
    client = make_app(seeds_dir, base_url=BASE).test_client()
    health = get(client, "/healthz").get_json()
    assert health["articles"] == 2
    errors = {e["file"]: e for e in health["errors"]}
    assert set(errors) == {"sub/broken.txt", "empty.md", "warn.yaml"}
    assert "invalid YAML" in errors["sub/broken.txt"]["error"]
    assert errors["sub/broken.txt"]["skipped"] is True
    assert "empty" in errors["empty.md"]["error"]
    assert "published" in errors["warn.yaml"]["error"]
    assert errors["warn.yaml"]["skipped"] is False
    assert str(seeds_dir) not in json.dumps(health)


def test_opml_lists_every_feed(client: FlaskClient) -> None:
    response = get(client, "/feeds.opml")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.data)
    xml_urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert xml_urls == [
        f"{BASE}/feed.rss",
        f"{BASE}/topics/ai.rss",
        f"{BASE}/topics/microsoft-ai.rss",
        f"{BASE}/providers/hothardware.com.rss",
        f"{BASE}/providers/techcrunch.com.rss",
    ]


# --- an empty seeds directory -----------------------------------------------------------


def test_empty_seeds_directory(make_app: Callable[..., Flask], tmp_seeds: Path) -> None:
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    response = get(client, "/feed.rss")
    assert response.status_code == 200
    channel = xml(response).find("channel")
    assert channel is not None and channel.findall("item") == []
    assert parsedate_to_datetime(channel.findtext("lastBuildDate", "")) == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    assert parse_feed(get(client, "/feed.atom"), f"{BASE}/feed.atom").bozo == 0
    assert get(client, "/topics/ai.rss").status_code == 404
    assert get(client, "/topics.json").get_json() == []
    assert get(client, "/healthz").get_json()["articles"] == 0
    assert get(client, "/").status_code == 200


# --- host, caching and HTTP manners -----------------------------------------------------


def test_without_base_url_urls_follow_the_request_host(
    make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    client = make_app(seeds_dir).test_client()
    for path in ("/topics/ai.rss", "/topics/ai.atom", "/topics/ai.json", "/", "/topics.json"):
        a_body = client.get(path, headers={"Host": "a.test"}).get_data(as_text=True)
        b_body = client.get(path, headers={"Host": "b.test"}).get_data(as_text=True)
        assert "http://a.test/" in a_body and "b.test" not in a_body, path
        assert "http://b.test/" in b_body and "a.test" not in b_body, path
        again = client.get(path, headers={"Host": "a.test"}).get_data(as_text=True)
        assert again == a_body
    channel = xml(client.get("/topics/ai.rss?limit=2", headers={"Host": "b.test:8080"}))
    self_link = channel.find("channel/atom:link[@rel='self']", NS)
    assert self_link is not None
    assert self_link.get("href") == "http://b.test:8080/topics/ai.rss?limit=2"


def test_configured_base_url_wins_over_host(client: FlaskClient) -> None:
    body = client.get("/topics/ai.rss", headers={"Host": "evil.test"}).get_data(as_text=True)
    assert "evil.test" not in body
    assert f"{BASE}/topics/ai" in body


@pytest.mark.parametrize("path", ["/feed.rss", "/topics/ai.atom", "/topics/ai.json", "/"])
def test_etag_and_conditional_get(client: FlaskClient, path: str) -> None:
    response = get(client, path)
    etag = response.headers.get("ETag")
    assert etag
    again = get(client, path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    other = get(client, path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.data == response.data


def test_gzip_when_asked(client: FlaskClient) -> None:
    plain = get(client, "/feed.rss")
    packed = get(client, "/feed.rss", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert "Accept-Encoding" in packed.headers["Vary"]
    refused = get(client, "/feed.rss", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
@pytest.mark.parametrize("path", ["/feed.rss", "/topics/ai.atom", "/", "/healthz"])
def test_other_methods_are_405(client: FlaskClient, method: str, path: str) -> None:
    response = getattr(client, method)(BASE + path, data="x")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_unexpected_error_is_500_without_traceback(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(document: FeedDocument) -> bytes:
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setitem(render.RENDERERS, "rss", explode)  # the table web renders from
    for accept in ("text/plain", "application/json"):
        response = get(client, "/feed.rss", headers={"Accept": accept})
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert "Traceback" not in body
        assert "secret detail" not in body and "/etc/passwd" not in body
        assert "RuntimeError" not in body


def test_security_headers(client: FlaskClient) -> None:
    assert get(client, "/feed.rss").headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in get(client, "/").headers["Content-Security-Policy"]


# --- rendering round trip ---------------------------------------------------------------


def _document(article: Any) -> FeedDocument:
    return FeedDocument(
        title="t",
        description="d",
        html_url="http://x.test/",
        self_url="http://x.test/feed.rss",
        feed_id="http://x.test/feed.rss",
        language="en",
        updated=article.published_at,
        entries=[article],
        urls=Urls("http://x.test"),
        freshness=Freshness(60),
        publisher="Site",
    )


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(title=st.text(min_size=1, max_size=60), excerpt=st.text(max_size=60))
def test_any_text_survives_rendering(title: str, excerpt: str) -> None:
    fields = {
        "title": title,
        "excerpt": excerpt,
        "webUrl": "https://example.com/a",
        "publishedDateTime": datetime(2020, 1, 1, tzinfo=UTC),
        "published": True,
    }
    try:
        article, _ = article_from_mapping(fields)
    except Exception as error:  # a title of only whitespace or XML-unsafe characters
        assert "title" in str(error)
        return
    rss = ElementTree.fromstring(render_rss(_document(article)))
    assert rss.findtext("channel/item/title") == article.title
    atom = ElementTree.fromstring(render_atom(_document(article)))
    assert atom.findtext("atom:entry/atom:title", None, NS) == article.title
    feed = json.loads(render_json(_document(article)))
    assert feed["items"][0]["title"] == article.title

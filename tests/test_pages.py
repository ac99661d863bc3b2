"""What a person sees through the Flask app: feed previews for browsers (with the feed
kept for readers, byte for byte), the pages, search, paging, error pages, the icon, CORS."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.negotiation import FEED_VARY

BASE = "http://feeds.test"
CHROME = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
}
FIREFOX_OLD = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# What readers send: none of them gets the preview.
READERS = {
    "none": {},
    "feedparser": {
        "Accept": "application/atom+xml,application/rdf+xml,application/rss+xml,"
        "application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"
    },
    "any": {"Accept": "*/*"},
    "html named, not preferred": {"Accept": "application/rss+xml, text/html;q=0.5"},
    "html equal to feeds": {"Accept": "text/html, application/atom+xml"},
    "fetch() from a page": {"Sec-Fetch-Dest": "empty", "Accept": "*/*"},
}
FEEDS = ("/feed.rss", "/topics/ai.atom", "/providers/techcrunch.com.json")
AI_LINKS = [
    "https://hothardware.com/news/openai-supercomputer-by-microsoft",
    "https://techcrunch.com/2020/05/19/microsoft-says-it-teamed-up-with-openai-to-build-a-"
    "massive-ai-supercomputer-in-azure/",
]


def get(client: FlaskClient, path: str, headers: dict[str, str] | None = None) -> TestResponse:
    return client.get(BASE + path, headers=headers or {})


def page(response: TestResponse) -> Any:
    body = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return lxml.html.fromstring(body)


def entry_links(response: TestResponse) -> list[str]:
    return [str(href) for href in page(response).xpath("//main//article//h3/a/@href")]


# --- feeds in a browser ------------------------------------------------------------------


@pytest.mark.parametrize("path", FEEDS)
def test_a_browser_gets_a_preview_and_every_reader_the_same_feed(
    client: FlaskClient, path: str
) -> None:
    feed = get(client, path)
    assert feed.mimetype in ("application/rss+xml", "application/atom+xml", "application/feed+json")
    for name, headers in READERS.items():
        reader = get(client, path, headers)
        assert reader.data == feed.data, name
        assert reader.headers["ETag"] == feed.headers["ETag"], name
    for headers in (CHROME, FIREFOX_OLD, {"Sec-Fetch-Dest": "document"}):
        preview = get(client, path, headers)
        assert preview.status_code == 200
        assert preview.mimetype == "text/html"
        assert preview.headers["ETag"] != feed.headers["ETag"]
        assert "default-src 'none'" in preview.headers["Content-Security-Policy"]
    for response in (feed, preview):
        assert response.headers["Vary"] == FEED_VARY
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_preview_shows_what_a_feed_is_its_url_and_its_entries(client: FlaskClient) -> None:
    preview = page(get(client, "/topics/ai.rss", CHROME))
    text = preview.text_content()
    assert "This is a web feed" in text and "feed reader" in text
    assert preview.xpath("//code/text()") == [f"{BASE}/topics/ai.rss"]
    assert preview.xpath("//h1/text()") == ["AI — feedserver"]
    assert [str(a) for a in preview.xpath("//main//article//h3/a/@href")] == AI_LINKS
    first = preview.xpath("//main//article")[0]
    image = first.xpath(".//img")[0]
    assert (image.get("width"), image.get("height")) == ("708", "462") and image.get("alt")
    assert "HotHardware" in first.xpath("string(.//p[@class='meta'])")
    assert first.xpath(".//time/@datetime") == ["2020-05-20T14:25:00+00:00"]
    assert "supercomputers running on the Azure infrastructure" in first.text_content()
    assert f"{BASE}/topics/ai.atom" in preview.xpath("//a/@href")  # the other formats
    assert f"{BASE}/topics/ai" in preview.xpath("//a/@href")  # and the page


def test_the_preview_holds_the_page_of_entries_the_feed_holds(client: FlaskClient) -> None:
    second = get(client, "/feed.rss?limit=1&page=2", CHROME)
    feed = feedparser.parse(get(client, "/feed.rss?limit=1&page=2").data)
    assert entry_links(second) == [entry.link for entry in feed.entries]
    tree = page(second)
    assert tree.xpath("//a[@rel='prev']/@href") == [f"{BASE}/feed.rss?limit=1&page=1"]
    assert "page 2 of 2" in tree.text_content()


def test_each_variant_revalidates_with_its_own_etag(client: FlaskClient) -> None:
    feed = get(client, "/topics/ai.rss")
    preview = get(client, "/topics/ai.rss", CHROME)
    again = get(client, "/topics/ai.rss", {**CHROME, "If-None-Match": preview.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Vary"] == FEED_VARY
    crossed = get(client, "/topics/ai.rss", {**CHROME, "If-None-Match": feed.headers["ETag"]})
    assert crossed.status_code == 200 and crossed.data == preview.data
    reader = get(client, "/topics/ai.rss", {"If-None-Match": preview.headers["ETag"]})
    assert reader.status_code == 200 and reader.data == feed.data
    assert get(client, "/topics/ai.rss", {"If-None-Match": feed.headers["ETag"]}).status_code == 304
    zipped = get(client, "/topics/ai.rss", {**CHROME, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == preview.data


def test_the_fast_path_keeps_the_variants_apart(app: Flask, client: FlaskClient) -> None:
    cache = app.extensions["feedserver.cache"]
    feed = get(client, "/topics/ai.atom").data
    preview = get(client, "/topics/ai.atom", CHROME).data
    renders = cache.renders
    for _ in range(3):  # answered from the cache, each with its own variant
        assert get(client, "/topics/ai.atom", READERS["feedparser"]).data == feed
        assert get(client, "/topics/ai.atom", FIREFOX_OLD).data == preview
        assert get(client, "/topics/ai.atom", CHROME).data == preview
        assert get(client, "/topics/ai.atom").data == feed
    assert cache.renders == renders
    # Pages and listings have one variant: a browser and a script share one entry.
    get(client, "/topics.json", CHROME)
    renders = cache.renders
    assert get(client, "/topics.json").headers["Vary"] == "Accept-Encoding"
    assert cache.renders == renders


def test_a_bad_query_is_still_a_plain_400_for_a_browser(client: FlaskClient) -> None:
    response = get(client, "/feed.rss?limit=0", CHROME)
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert "limit" in response.get_data(as_text=True)


# --- pages ---------------------------------------------------------------------------------


def test_home_page_shows_the_newest_articles_topics_and_providers(client: FlaskClient) -> None:
    home = get(client, "/")
    tree = page(home)
    assert entry_links(home) == AI_LINKS
    chips = [" ".join(li.text_content().split()) for li in tree.xpath("//ul[@class='chips']/li")]
    assert chips == [
        "AI 2 articles",
        "Microsoft AI 2 articles",
        "HotHardware 1 article",
        "TechCrunch 1 article",
    ]
    assert "2 articles, 2 topics, 2 providers" in tree.text_content()
    assert {f"{BASE}/topics", f"{BASE}/providers", f"{BASE}/feeds.opml"} <= set(
        tree.xpath("//a/@href")
    )


def test_an_article_shows_its_image_provider_date_and_topics(client: FlaskClient) -> None:
    tree = page(get(client, "/topics/microsoft-ai"))
    article = tree.xpath("//main//article")[1]
    image = article.xpath(".//img")[0]
    assert image.get("width") and image.get("height") and image.get("alt")
    assert image.get("src", "").startswith("https://")
    assert article.xpath(".//p[@class='meta']/a/@href") == [f"{BASE}/providers/techcrunch.com"]
    assert article.xpath(".//time/text()") == ["19 May 2020, 15:13 UTC"]
    assert article.xpath(".//ul[@class='tags']//a/@href") == [
        f"{BASE}/topics/microsoft-ai",
        f"{BASE}/topics/ai",
    ]


def test_an_image_of_unknown_size_has_no_made_up_size(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", images=[{"url": "https://example.com/a.jpg"}])
    client = make_app(tmp_seeds, base_url=BASE).test_client()
    image = page(get(client, "/topics/testing")).xpath("//main//article//img")[0]
    assert image.get("width") is None and image.get("height") is None
    assert image.get("alt") == "Test article a"


@pytest.fixture
def many(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> FlaskClient:
    """Five articles of one topic and provider, with three to a page."""
    for day in range(1, 6):
        write_seed(f"a{day}.txt", publishedDateTime=f"2020-05-0{day}T12:00:00Z")
    return make_app(tmp_seeds, base_url=BASE, page_size=3).test_client()


@pytest.mark.parametrize("path", ["/", "/topics/testing", "/providers/example.com"])
def test_pages_page_older_and_newer(many: FlaskClient, path: str) -> None:
    first = page(get(many, path))
    links = [str(href) for href in first.xpath("//main//article//h3/a/@href")]
    assert links == [f"https://example.com/articles/a{day}" for day in (5, 4, 3)]
    assert first.xpath("//a[@rel='next']/@href") == ["?page=2"] and not first.xpath(
        "//a[@rel='prev']"
    )
    second = page(get(many, f"{path}?page=2"))
    links = [str(href) for href in second.xpath("//main//article//h3/a/@href")]
    assert links == [f"https://example.com/articles/a{day}" for day in (2, 1)]
    assert second.xpath("//a[@rel='prev']/@href") == [path] and not second.xpath("//a[@rel='next']")
    assert "Page 2 of 2" in second.text_content()
    assert get(many, f"{path}?page=3").status_code == 404
    bad = get(many, f"{path}?page=x", CHROME)
    assert bad.status_code == 400 and "page" in bad.get_data(as_text=True)


def test_search_finds_articles_by_every_word_and_offers_its_feed(client: FlaskClient) -> None:
    found = get(client, "/search?q=Massive+supercomputer")
    tree = page(found)
    assert entry_links(found) == [AI_LINKS[1]]
    assert "1 article matches" in tree.text_content()
    assert tree.xpath("//input[@name='q']/@value") == ["Massive supercomputer"]
    feed_url = f"{BASE}/feed.rss?q=Massive+supercomputer"
    assert feed_url in tree.xpath("//code/text()")
    assert [e.link for e in feedparser.parse(get(client, feed_url[len(BASE) :]).data).entries] == [
        AI_LINKS[1]
    ]
    both = page(get(client, "/search?q=microsoft"))
    assert "2 articles match" in both.text_content()
    none = page(get(client, "/search?q=nothing-like-this"))
    assert "0 articles match" in none.text_content() and not none.xpath("//main//article")
    empty = page(get(client, "/search"))
    assert not empty.xpath("//main//article") and empty.xpath("//form[@role='search']")
    assert get(client, "/search?q=" + "x" * 300).status_code == 400


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        ("/topics", [("AI", "2 articles"), ("Microsoft AI", "2 articles")]),
        ("/providers", [("HotHardware", "1 article"), ("TechCrunch", "1 article")]),
    ],
)
def test_topic_and_provider_indexes(
    client: FlaskClient, path: str, rows: list[tuple[str, str]]
) -> None:
    tree = page(get(client, path))
    found = [
        (row.xpath("string(td[1])").strip(), row.xpath("string(td[2])").strip())
        for row in tree.xpath("//tbody/tr")
    ]
    assert found == rows
    assert tree.xpath("//h1/text()") == [path.strip("/").capitalize()]


def test_counts_are_singular_or_plural_as_english_wants(client: FlaskClient) -> None:
    for path in ("/", "/topics", "/providers", "/topics/ai", "/providers/techcrunch.com"):
        text = " ".join(page(get(client, path)).text_content().split())
        assert not re.search(r"\b1 (articles|topics|providers)\b", text), path
        assert not re.search(r"\b([02-9]|\d\d+) (article|topic|provider)\b", text), path
    assert "1 article" in page(get(client, "/providers/techcrunch.com")).text_content()


@pytest.mark.parametrize(
    "path", ["/", "/topics", "/providers", "/topics/ai", "/search?q=ai", "/feed.rss"]
)
def test_pages_are_script_free_phone_ready_and_link_their_icon(
    client: FlaskClient, path: str
) -> None:
    response = get(client, path, CHROME)
    tree = page(response)
    assert not tree.xpath("//script")
    assert not [name for el in tree.iter() for name in el.attrib if name.startswith("on")]
    assert tree.xpath("//meta[@name='viewport']/@content") == [
        "width=device-width, initial-scale=1"
    ]
    assert tree.xpath("//link[@rel='icon']/@href") == ["/static/favicon.svg"]
    policy = response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in policy and "script-src" not in policy
    assert "unsafe-inline" not in policy
    form = tree.xpath("//form[@role='search']")[0]
    assert form.get("method") == "get" and form.get("action") == f"{BASE}/search"


def test_the_style_sheet_has_a_dark_mode_and_a_phone_layout(client: FlaskClient) -> None:
    css = get(client, "/static/style.css").get_data(as_text=True)
    assert "@media (prefers-color-scheme: dark)" in css
    assert re.search(r"@media \(max-width: \d+rem\)", css)


def test_the_icon_is_served(client: FlaskClient) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = get(client, path)
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"
        assert response.get_data(as_text=True).startswith("<svg")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/topics/nope", "/providers/nope.example", "/a/b"])
def test_a_browser_gets_an_html_404_with_a_way_home(client: FlaskClient, path: str) -> None:
    response = get(client, path, CHROME)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    tree = page(response)
    assert tree.xpath("//h1/text()") == ["404 Not Found"]
    assert f"{BASE}/" in tree.xpath("//main//a/@href")
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/topics/nope.rss", "text/plain"),
        ("/feed.atom?page=99", "text/plain"),
        ("/providers/nope.json", "application/json"),
        ("/nope.json", "application/json"),
        ("/healthz.json", "application/json"),
    ],
)
def test_feeds_and_json_keep_plain_errors_even_for_a_browser(
    client: FlaskClient, path: str, mimetype: str
) -> None:
    response = get(client, path, CHROME)
    assert response.status_code == 404 and response.mimetype == mimetype


def test_programs_keep_plain_errors_on_pages(client: FlaskClient) -> None:
    for headers in ({}, {"Accept": "*/*"}, READERS["feedparser"]):
        assert get(client, "/nope", headers).mimetype == "text/plain"
    assert get(client, "/nope", {"Accept": "application/json"}).mimetype == "application/json"


# --- CORS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/feed.rss", True),
        ("/topics/ai.atom", True),
        ("/providers/techcrunch.com.json", True),
        ("/topics.json", True),
        ("/providers.json", True),
        ("/feeds.opml", True),
        ("/topics/nope.rss", True),  # a script may read why its fetch failed
        ("/", False),
        ("/topics/ai", False),
        ("/topics", False),
        ("/search?q=ai", False),
        ("/healthz", False),
        ("/static/style.css", False),
        ("/nope", False),
    ],
)
def test_public_data_may_be_read_by_any_page_and_nothing_else(
    client: FlaskClient, path: str, public: bool
) -> None:
    for headers in ({}, {"Origin": "https://reader.example"}):
        response = get(client, path, headers)
        assert response.headers.get("Access-Control-Allow-Origin") == ("*" if public else None)
    if path == "/healthz":
        assert json.loads(get(client, path).data)["status"] == "ok"

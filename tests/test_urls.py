"""The URL layout: what `Urls` makes, and that every URL it makes is one the app routes to
the intended view (the routes take their rules from the same layout)."""

from __future__ import annotations

import pytest
from flask import Flask

from feedserver.catalog import ALL, PROVIDER, TOPIC
from feedserver.urls import HEALTH, LISTINGS, METRICS, PATHS, STATS, STATS_JSON, Urls, query_link

BASE = "https://feeds.example.org"


def test_urls_lay_out_feeds_pages_and_listings_under_the_base() -> None:
    urls = Urls(BASE)
    assert urls.home() == f"{BASE}/"
    assert urls.everything("rss") == f"{BASE}/feed.rss"
    assert urls.feed_of(TOPIC, "ai", "atom") == f"{BASE}/topics/ai.atom"
    assert urls.feed_of(PROVIDER, "bbc.co.uk", "json", [("q", "a b"), ("page", "2")]) == (
        f"{BASE}/providers/bbc.co.uk.json?q=a+b&page=2"
    )
    assert urls.page_of(ALL, "") == f"{BASE}/"
    assert urls.page_of(TOPIC, "ai") == f"{BASE}/topics/ai"
    assert urls.index(PROVIDER) == f"{BASE}/providers"
    assert urls.listing(TOPIC) == f"{BASE}/topics.json"
    assert urls.opml() == f"{BASE}/feeds.opml"
    assert urls.search() == f"{BASE}/search"
    assert urls.static("style.css") == f"{BASE}/static/style.css"
    assert urls.path("/topics", "q=x%26y") == f"{BASE}/topics?q=x%26y"


def test_paths_are_the_urls_of_an_empty_base() -> None:
    assert PATHS.feed_of(TOPIC, "ai", "rss") == "/topics/ai.rss"
    assert LISTINGS == ("/topics.json", "/providers.json", "/feeds.opml")


def test_a_query_link_falls_back_to_the_path_when_the_query_is_empty() -> None:
    assert query_link([("q", "ai"), ("page", "3")], "/search") == "?q=ai&page=3"
    assert query_link([], "/search") == "/search"


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (PATHS.home(), "pages.index"),
        (PATHS.everything("json"), "feeds.all_feed"),
        (PATHS.feed_of(TOPIC, "ai", "rss"), "feeds.topic_feed"),
        (PATHS.feed_of(PROVIDER, "bbc.co.uk", "atom"), "feeds.provider_feed"),
        (PATHS.page_of(TOPIC, "ai"), "pages.topic_page"),
        (PATHS.page_of(PROVIDER, "bbc.co.uk"), "pages.provider_page"),
        (PATHS.index(TOPIC), "pages.topics_page"),
        (PATHS.index(PROVIDER), "pages.providers_page"),
        (PATHS.listing(TOPIC), "feeds.topics_json"),
        (PATHS.listing(PROVIDER), "feeds.providers_json"),
        (PATHS.opml(), "feeds.feeds_opml"),
        (PATHS.search(), "pages.search"),
        (PATHS.static("style.css"), "static"),
        (HEALTH, "feeds.healthz"),
        (STATS, "stats.stats_page"),
        (STATS_JSON, "stats.stats_json"),
        (METRICS, "stats.metrics"),
    ],
)
def test_every_url_of_the_layout_reaches_its_view(app: Flask, url: str, endpoint: str) -> None:
    matched, _ = app.url_map.bind("feeds.example.org").match(url)
    assert matched == endpoint

"""The URLs people and readers type: 301s to the canonical URLs, built from base_url or as
bare paths, never from the Host header."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.config import app_settings
from feedserver.redirects import ALIAS_MAX_AGE, FEED_ALIASES

from .conftest import BUNDLED_SEEDS, GunicornServer

BASE = "http://feeds.test"
# The feed names of other software come from the table itself: each must answer a 301 to a
# feed that answers 200. The tests below name the common ones (/rss.xml, /atom.xml, /feed/).
ALIASES = {
    **FEED_ALIASES,
    "/topics/": "/topics",
    "/providers/": "/providers",
    "/topics/ai/": "/topics/ai",
    "/providers/techcrunch.com/": "/providers/techcrunch.com",
}
SPELLINGS = {
    "/topics/Microsoft-AI.rss": "/topics/microsoft-ai.rss",
    "/topics/microsoft%20ai.rss": "/topics/microsoft-ai.rss",
    "/topics/MICROSOFT_AI.atom": "/topics/microsoft-ai.atom",
    "/topics/Microsoft%20AI.json": "/topics/microsoft-ai.json",
    "/topics/Microsoft%20AI": "/topics/microsoft-ai",
    "/topics/Microsoft%20AI/": "/topics/microsoft-ai",
    "/providers/www.TechCrunch.com.rss": "/providers/techcrunch.com.rss",
    "/providers/www.techcrunch.com.atom": "/providers/techcrunch.com.atom",
    "/providers/TechCrunch.com": "/providers/techcrunch.com",
    "/providers/TECHCRUNCH.COM/": "/providers/techcrunch.com",
}


@pytest.mark.parametrize(("path", "target"), {**ALIASES, **SPELLINGS}.items())
def test_typed_urls_redirect_to_the_canonical_url(
    client: FlaskClient, path: str, target: str
) -> None:
    for method in (client.get, client.head):
        response = method(BASE + path, headers={"Host": "evil.example"})
        assert response.status_code == 301
        assert response.headers["Location"] == BASE + target
    assert client.get(BASE + target).status_code == 200


@pytest.mark.parametrize("path", ["/rss.xml", "/topics/ai/", "/topics/Microsoft-AI.rss"])
def test_without_base_url_the_target_is_a_bare_path_whatever_the_host(
    make_app: Callable[..., Flask], seeds_dir: Path, path: str
) -> None:
    client = make_app(seeds_dir).test_client()
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 301
    assert response.headers["Location"] == {**ALIASES, **SPELLINGS}[path]


def test_the_query_is_kept_and_encoded(client: FlaskClient) -> None:
    response = client.get(BASE + "/rss.xml?limit=5&q=open%20ai")
    assert response.headers["Location"] == f"{BASE}/feed.rss?limit=5&q=open%20ai"
    response = client.get(
        BASE + "/topics/AI.rss", environ_overrides={"QUERY_STRING": "q=a b\r\nX-Evil: 1"}
    )
    assert response.headers["Location"] == f"{BASE}/topics/ai.rss?q=a%20b%0D%0AX-Evil:%201"
    assert "X-Evil" not in response.headers


def test_redirects_say_how_long_they_hold(client: FlaskClient, app: Flask) -> None:
    fixed = client.get(BASE + "/atom.xml")
    assert fixed.headers["Cache-Control"] == f"public, max-age={ALIAS_MAX_AGE}"
    # Another spelling holds while the topic exists: until the next reload at most.
    spelled = client.get(BASE + "/topics/AI.rss")
    interval = app_settings(app).reload_interval
    assert spelled.headers["Cache-Control"] == f"public, max-age={interval}"
    assert spelled.headers["Access-Control-Allow-Origin"] == "*"  # fetch() follows it
    assert "Access-Control-Allow-Origin" not in client.get(BASE + "/topics/AI").headers


@pytest.mark.parametrize(
    "path",
    [
        "/topics/nope.rss",
        "/topics/nope/",
        "/topics/Nope",
        "/topics/ai%00.rss",
        "/topics/ai%0a",
        "/providers/www.nope.example.rss",
        "/providers/www.nope.example/",
        "/topics/azure.rss",  # only unpublished articles name it
        "/topics/Azure.rss",
        "/providers/www.GeekWire.com.rss",
        "/topics/ai.rss/",
    ],
)
def test_what_names_nothing_served_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(BASE + path)
    assert response.status_code == 404
    assert "Location" not in response.headers


# --- readers follow them ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    running = gunicorn_launcher(BUNDLED_SEEDS, tmp_path_factory.mktemp("redirects"))
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/rss.xml", "/atom.xml", "/feed/", "/topics/Microsoft-AI.rss"])
def test_feedparser_follows_them_to_the_feed(server: GunicornServer, path: str) -> None:
    parsed = feedparser.parse(server.url + path)
    assert parsed.status == 301 and not parsed.bozo
    assert parsed.entries
    assert parsed.href.startswith(server.url) and parsed.href != server.url + path

"""One display name per topic and per provider: however the articles spell a merged topic or
provider, every feed format, page, listing, the OPML and the static export show the same
name, with its whitespace collapsed."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.export import MANIFEST, REDIRECTS_FILE, build_site

from .conftest import TEST_BASE_URL
from .test_export import files_under, url_path

TOPIC = "Microsoft AI"
OTHER_TOPIC = "Machine Learning"
PROVIDER = "TechCrunch"
# Spellings the articles use that must never be shown: other spellings of the same topic or
# provider, and names with a run of whitespace.
HIDDEN: tuple[str, ...] = ("Mícrosoft", "microsoft ai", "microsoft  ai", "machine learning")
HIDDEN += ("Machine  Learning", "Tech Crunch", "Tech  Crunch", "TECHCRUNCH")


@pytest.fixture
def names_app(
    tmp_seeds: Path, write_seed: Callable[..., Path], make_app: Callable[..., Flask]
) -> Flask:
    """Four articles spelling one topic three ways and one provider three ways."""
    spellings = [
        (["Mícrosoft AI", "Machine  Learning"], "Tech  Crunch", "techcrunch.com"),
        (["microsoft  ai"], "TECHCRUNCH", "www.TechCrunch.com"),
        (["Microsoft AI", " Machine Learning "], "TechCrunch", "techcrunch.com"),
        (["Microsoft AI", "machine learning"], "TechCrunch", "techcrunch.com"),
    ]
    for day, (topics, name, domain) in enumerate(spellings, 1):
        write_seed(
            f"a{day}.txt",
            topics=topics,
            provider={"name": name, "domain": domain},
            publishedDateTime=f"2020-05-0{day}T12:00:00Z",
        )
    return make_app(tmp_seeds, base_url=TEST_BASE_URL)


def _visible(name: str, body: bytes) -> str:
    """A response's text with every escape undone, to search for a spelling."""
    if name.endswith(".json") and not name.endswith(".html"):
        return json.dumps(json.loads(body), ensure_ascii=False)
    return html.unescape(body.decode("utf-8"))


def _assert_no_hidden_spelling(name: str, body: bytes) -> None:
    text = _visible(name, body)
    shown = [spelling for spelling in HIDDEN if spelling in text]
    assert not shown, f"{name} shows {shown}"


def test_every_feed_format_names_a_topic_and_provider_one_way(names_app: Flask) -> None:
    client = names_app.test_client()
    for path in ("/feed", "/topics/microsoft-ai", "/providers/techcrunch.com"):
        for extension in ("rss", "atom"):
            body = client.get(f"{path}.{extension}").data
            _assert_no_hidden_spelling(f"{path}.{extension}", body)
            feed = feedparser.parse(body)
            assert len(feed.entries) == 4
            for entry in feed.entries:
                terms = {tag.term for tag in entry.tags}
                assert TOPIC in terms and terms <= {TOPIC, OTHER_TOPIC}, terms
                assert entry.author == PROVIDER
                assert f"Read the full article at {PROVIDER}" in entry.content[0].value
                if extension == "rss":
                    assert entry.source.title == PROVIDER
        feed_json = client.get(f"{path}.json").get_json()
        _assert_no_hidden_spelling(f"{path}.json", client.get(f"{path}.json").data)
        for item in feed_json["items"]:
            assert TOPIC in item["tags"] and set(item["tags"]) <= {TOPIC, OTHER_TOPIC}
            assert item["authors"] == [{"name": PROVIDER, "url": "https://techcrunch.com"}]
    topic_feed = feedparser.parse(client.get("/topics/microsoft-ai.atom").data)
    assert topic_feed.feed.title.startswith(f"{TOPIC} — ")
    learning = feedparser.parse(client.get("/topics/machine-learning.rss").data)
    assert {tag.term for e in learning.entries for tag in e.tags} == {TOPIC, OTHER_TOPIC}


def _chips(client: FlaskClient, path: str) -> tuple[set[str], set[str], list[str]]:
    """The topic chips, the provider links of the entries and the headings of a page."""
    response = client.get(path)
    assert response.status_code == 200, path
    _assert_no_hidden_spelling(path, response.data)
    dom = lxml.html.fromstring(response.data)
    chips = {a.text_content() for a in dom.xpath("//ul[@class='tags']//a")}
    providers = {a.text_content() for a in dom.xpath("//p[@class='meta']/a")}
    return chips, providers, [h.text_content() for h in dom.xpath("//h1")]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/topics/microsoft-ai",
        "/topics/machine-learning",
        "/providers/techcrunch.com",
        "/search?q=test",
        "/topics/machine-learning+microsoft-ai",
    ],
)
def test_every_page_names_a_topic_and_provider_one_way(names_app: Flask, path: str) -> None:
    chips, providers, _ = _chips(names_app.test_client(), path)
    assert chips == {TOPIC, OTHER_TOPIC}
    assert providers == {PROVIDER}


def test_headings_listings_and_opml_use_the_display_names(names_app: Flask) -> None:
    client = names_app.test_client()
    assert _chips(client, "/topics/microsoft-ai")[2] == [TOPIC]
    assert _chips(client, "/topics/machine-learning")[2] == [OTHER_TOPIC]
    assert _chips(client, "/providers/techcrunch.com")[2] == [PROVIDER]
    preview = client.get("/topics/microsoft-ai.rss", headers={"Sec-Fetch-Dest": "document"})
    _assert_no_hidden_spelling("preview", preview.data)
    chips = lxml.html.fromstring(preview.data).xpath("//ul[@class='tags']//a")
    assert {a.text_content() for a in chips} == {TOPIC, OTHER_TOPIC}
    topics = {t["slug"]: t["name"] for t in client.get("/topics.json").get_json()}
    assert topics == {"machine-learning": OTHER_TOPIC, "microsoft-ai": TOPIC}
    providers = {p["slug"]: p["name"] for p in client.get("/providers.json").get_json()}
    assert providers == {"techcrunch.com": PROVIDER}
    for path in ("/topics", "/providers", "/feeds.opml"):
        _assert_no_hidden_spelling(path, client.get(path).data)
    opml = client.get("/feeds.opml").get_data(as_text=True)
    for name in (TOPIC, OTHER_TOPIC, PROVIDER):
        assert f'text="{name}" title="{name}"' in opml


def test_the_export_shows_the_same_names_byte_for_byte(
    names_app: Flask, tmp_path: Path, make_app: Callable[..., Flask], tmp_seeds: Path
) -> None:
    out = tmp_path / "site"
    build_site(names_app, out)
    written = files_under(out)
    assert "topics/microsoft-ai.rss" in written and "providers/techcrunch.com.json" in written
    # A separate app over the same seeds answers with the same bytes: the name chosen is
    # the same in every process.
    server = make_app(tmp_seeds, base_url=TEST_BASE_URL).test_client()
    for name, body in written.items():
        if name in (REDIRECTS_FILE, MANIFEST) or name.startswith("static/"):
            continue
        path, headers = url_path(name)
        assert server.get(path, headers=headers).get_data() == body, name
        if name != "favicon.ico":
            _assert_no_hidden_spelling(name, body)


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _all_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _all_strings(item)]
    return []


def test_names_lose_runs_of_whitespace(
    tmp_seeds: Path, write_seed: Callable[..., Path], make_app: Callable[..., Flask]
) -> None:
    write_seed("a.txt", topics=["Deep \t Learning", "Machine  Learning"])
    write_seed("b.txt", topics=["Machine\u00a0 Learning "], provider={"name": "  The  Verge "})
    client = make_app(tmp_seeds, base_url=TEST_BASE_URL).test_client()
    topics = {t["slug"]: t["name"] for t in client.get("/topics.json").get_json()}
    assert topics == {"deep-learning": "Deep Learning", "machine-learning": "Machine Learning"}
    providers = {p["slug"]: p["name"] for p in client.get("/providers.json").get_json()}
    assert providers == {"example.com": "Example News", "the-verge": "The Verge"}
    feed = client.get("/feed.json").get_json()
    assert not [s for s in _all_strings(feed) if "  " in s or "\u00a0" in s or "\t" in s]
    terms = {t.term for e in feedparser.parse(client.get("/feed.rss").data).entries for t in e.tags}
    assert terms == {"Deep Learning", "Machine Learning"}
    page = lxml.html.fromstring(client.get("/topics/machine-learning").data)
    assert page.xpath("//h1")[0].text_content() == "Machine Learning"
    assert {a.text_content() for a in page.xpath("//ul[@class='tags']//a")} == {
        "Deep Learning",
        "Machine Learning",
    }

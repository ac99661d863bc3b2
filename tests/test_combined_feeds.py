"""Combined feeds through Flask's test client: unions of topics or providers in the path
(`/topics/ai+azure.rss`), and any feed narrowed by topic=, provider=, exclude_topic= and
exclude_provider=."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import feedparser
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.export import build_site
from feedserver.query import KNOWN_PARAMETERS, MAX_SELECTION_VALUES

BASE = "http://feeds.test"
NS = {"atom": "http://www.w3.org/2005/Atom"}
TECHCRUNCH = {"name": "TechCrunch", "domain": "www.techcrunch.com"}
HOTHARDWARE = {"name": "HotHardware", "domain": "hothardware.com"}
OTHER = {"name": "Other", "domain": "other.example"}
# name: (topics, provider or None, day of May 2020); newest first by day.
ARTICLES: dict[str, tuple[list[str], dict[str, str] | None, int]] = {
    "a": (["AI"], TECHCRUNCH, 9),
    "b": (["AI", "Azure"], HOTHARDWARE, 8),
    "c": (["Azure"], TECHCRUNCH, 7),
    "d": (["Cloud"], OTHER, 6),
    "e": (["AI", "Microsoft AI"], None, 5),
}


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    return client.get(BASE + path, **kwargs)


@pytest.fixture
def client(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> FlaskClient:
    for name, (topics, provider, day) in ARTICLES.items():
        fields: dict[str, Any] = {
            "topics": topics,
            "publishedDateTime": f"2020-05-{day:02d}T12:00:00Z",
            "provider": provider,
        }
        write_seed(f"{name}.txt", omit=() if provider else ("provider",), **fields)
    return make_app(tmp_seeds, base_url=BASE).test_client()


def names(client: FlaskClient, path: str) -> list[str]:
    """The articles (by seed name) a JSON, RSS or Atom feed holds, in order."""
    response = get(client, path)
    assert response.status_code == 200, (path, response.data)
    if ".json" in path:
        urls = [item["url"] for item in json.loads(response.data)["items"]]
    else:
        parsed = feedparser.parse(response.data)
        assert not parsed.bozo, parsed.bozo_exception
        urls = [entry.link for entry in parsed.entries]
    return [url.rpartition("/")[2] for url in urls]


# --- unions in the path ---------------------------------------------------------------


@pytest.mark.parametrize("extension", ["rss", "atom", "json"])
def test_a_path_union_holds_every_article_of_its_topics_once(
    client: FlaskClient, extension: str
) -> None:
    assert names(client, f"/topics/ai+azure.{extension}") == ["a", "b", "c", "e"]
    assert names(client, f"/topics/azure+cloud.{extension}") == ["b", "c", "d"]


def test_a_provider_union(client: FlaskClient) -> None:
    assert names(client, "/providers/other.example+techcrunch.com.json") == ["a", "c", "d"]


def test_a_union_is_titled_by_its_parts(client: FlaskClient) -> None:
    feed = json.loads(get(client, "/topics/ai+azure.json").data)
    assert feed["title"] == "AI or Azure — feedserver"
    assert feed["feed_url"] == f"{BASE}/topics/ai+azure.json"
    atom = ElementTree.fromstring(get(client, "/topics/ai+azure.atom").data)
    assert atom.findtext("atom:id", None, NS) == f"{BASE}/topics/ai+azure.atom"


@pytest.mark.parametrize(
    "path",
    [
        "/topics/ai+nope.rss",
        "/topics/nope+ai.atom",
        "/topics/ai+nope+azure.json",
        "/providers/techcrunch.com+nope.rss",
        "/topics/ai+nope",
        "/topics/" + "+".join(["ai"] + [f"t{n}" for n in range(30)]) + ".rss",
    ],
)
def test_a_union_naming_an_unknown_topic_or_provider_is_404(client: FlaskClient, path: str) -> None:
    response = get(client, path)
    assert response.status_code == 404
    assert b"no such" in response.data


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/topics/AI+Azure.rss?limit=1", "/topics/ai+azure.rss?limit=1"),
        ("/topics/ai+Microsoft%20AI.json", "/topics/ai+microsoft-ai.json"),
        ("/topics/Azure+AI", "/topics/ai+azure"),
        ("/topics/azure+ai.rss", "/topics/ai+azure.rss"),
        ("/topics/ai+azure+ai.json", "/topics/ai+azure.json"),
        (
            "/providers/www.TechCrunch.com+other.example.atom",
            "/providers/other.example+techcrunch.com.atom",
        ),
    ],
)
def test_a_union_spelled_another_way_moves_to_its_canonical_url(
    client: FlaskClient, path: str, target: str
) -> None:
    response = get(client, path)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{BASE}{target}"


def test_the_page_of_a_union(client: FlaskClient) -> None:
    response = get(client, "/topics/ai+azure")
    assert response.status_code == 200
    page = lxml.html.fromstring(response.data)
    assert page.xpath("//h1/text()") == ["AI or Azure"]
    assert len(page.xpath("//article")) == 4
    assert f"{BASE}/topics/ai+azure.rss" in page.xpath("//link[@rel='alternate']/@href")


# --- parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("topic=ai", ["a", "b", "e"]),
        ("topic=ai&topic=cloud", ["a", "b", "d", "e"]),  # OR within a kind
        ("topic=ai&provider=techcrunch.com", ["a"]),  # AND across kinds
        ("topic=azure&provider=techcrunch.com&provider=hothardware.com", ["b", "c"]),
        ("exclude_topic=azure", ["a", "d", "e"]),
        ("exclude_provider=techcrunch.com", ["b", "d", "e"]),  # no provider is not excluded
        ("exclude_topic=azure&exclude_topic=ai", ["d"]),
        ("topic=ai&exclude_topic=azure", ["a", "e"]),
        ("provider=www.TechCrunch.com", ["a", "c"]),  # spelled as in a seed
        ("topic=Microsoft%20AI", ["e"]),  # a topic by its name
        ("topic=microsoft-ai", ["e"]),
        ("topic=nope", []),  # names no topic served now: an empty feed
        ("exclude_topic=nope", ["a", "b", "c", "d", "e"]),
        ("unknown=1", ["a", "b", "c", "d", "e"]),
    ],
)
def test_any_feed_is_narrowed_by_parameters(
    client: FlaskClient, query: str, expected: list[str]
) -> None:
    for extension in ("rss", "atom", "json"):
        assert names(client, f"/feed.{extension}?{query}") == expected


def test_parameters_narrow_topic_provider_and_union_feeds(client: FlaskClient) -> None:
    assert names(client, "/topics/ai.rss?provider=techcrunch.com") == ["a"]
    assert names(client, "/providers/techcrunch.com.atom?exclude_topic=azure") == ["a"]
    assert names(client, "/topics/ai+azure.json?exclude_provider=techcrunch.com") == ["b", "e"]
    assert names(client, "/topics/cloud.json?topic=ai") == []  # AND with the path


def test_a_narrowed_feed_says_so_and_has_its_own_identity(client: FlaskClient) -> None:
    feed = json.loads(get(client, "/topics/ai.json?provider=techcrunch.com").data)
    assert feed["title"] == "AI, from TechCrunch — feedserver"
    first = ElementTree.fromstring(
        get(client, "/feed.atom?provider=techcrunch.com&topic=ai&exclude_topic=cloud").data
    )
    second = ElementTree.fromstring(
        get(client, "/feed.atom?exclude_topic=cloud&topic=ai&provider=techcrunch.com").data
    )
    identity = first.findtext("atom:id", None, NS)
    assert identity == second.findtext("atom:id", None, NS)
    assert identity == (f"{BASE}/feed.atom?topic=ai&provider=techcrunch.com&exclude_topic=cloud")
    assert first.findtext("atom:title", None, NS) == (
        "feedserver: about AI, from TechCrunch, not about Cloud"
    )


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("topic=", "topic"),
        ("topic=%20%20", "topic"),
        ("provider=", "provider"),
        ("exclude_topic=---", "exclude_topic"),
        ("exclude_provider=", "exclude_provider"),
        ("topic=" + "a" * 201, "topic"),
        ("&".join(["provider=x.example"] * (MAX_SELECTION_VALUES + 1)), "provider"),
    ],
)
def test_a_bad_selection_value_is_400_naming_the_parameter(
    client: FlaskClient, query: str, parameter: str
) -> None:
    response = get(client, f"/topics/ai.rss?{query}")
    assert response.status_code == 400
    assert f"'{parameter}'" in response.get_data(as_text=True)


def test_selection_parameters_are_known_parameters() -> None:
    for name in ("topic", "provider", "exclude_topic", "exclude_provider"):
        assert name in KNOWN_PARAMETERS


# --- paging, validators, the export -----------------------------------------------------


def test_paging_a_combined_feed_keeps_every_parameter(client: FlaskClient) -> None:
    path = "/feed.atom?topic=ai&topic=azure&exclude_provider=other.example&limit=2"
    assert names(client, path) == ["a", "b"]
    root = ElementTree.fromstring(get(client, path).data)
    links = {link.get("rel"): link.get("href", "") for link in root.findall("atom:link", NS)}
    following = urlsplit(links["next"])
    assert parse_qsl(following.query) == [  # in the canonical order of KNOWN_PARAMETERS
        ("limit", "2"),
        ("page", "2"),
        ("topic", "ai"),
        ("topic", "azure"),
        ("exclude_provider", "other.example"),
    ]
    assert names(client, links["next"].removeprefix(BASE)) == ["c", "e"]
    assert names(client, links["last"].removeprefix(BASE)) == ["c", "e"]
    assert get(client, f"{path}&page=3").status_code == 404


def test_a_combined_feed_answers_conditional_requests(client: FlaskClient) -> None:
    for path in ("/topics/ai+azure.rss", "/feed.rss?topic=ai&provider=techcrunch.com"):
        first = get(client, path)
        etag = first.headers["ETag"]
        again = get(client, path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["ETag"] == etag
        assert first.headers["Last-Modified"]
    # Different selections are different representations.
    assert (
        get(client, "/feed.rss?topic=ai").headers["ETag"]
        != (get(client, "/feed.rss?topic=azure").headers["ETag"])
    )


def test_the_static_export_writes_no_combined_feed(app: Flask, tmp_path: Path) -> None:
    report = build_site(app, tmp_path / "site")
    written = [
        str(path.relative_to(tmp_path / "site")) for path in (tmp_path / "site").rglob("*.*")
    ]
    assert report.files > 0 and "feed.rss" in written
    assert not any("+" in name or "?" in name for name in written)


# --- a topic page links to its providers' subsets ----------------------------------------


def test_a_topic_page_links_to_its_per_provider_feeds(client: FlaskClient) -> None:
    page = lxml.html.fromstring(get(client, "/topics/ai").data)
    subsets = page.xpath("//h2[text()='By provider']/following-sibling::ul[1]/li")
    assert [li.text_content().split(":")[0] for li in subsets] == [
        "AI from HotHardware (1 article)",
        "AI from TechCrunch (1 article)",
    ]
    hrefs = subsets[1].xpath(".//a/@href")
    assert hrefs == [
        f"{BASE}/topics/ai.{extension}?provider=techcrunch.com"
        for extension in ("rss", "atom", "json")
    ]
    assert names(client, hrefs[0].removeprefix(BASE)) == ["a"]


def test_a_topic_from_one_provider_lists_no_subsets(client: FlaskClient) -> None:
    page = lxml.html.fromstring(get(client, "/topics/cloud").data)
    assert page.xpath("//h2[text()='By provider']") == []

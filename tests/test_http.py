"""HTTP manners feed readers expect: validators, conditional GET, HEAD, gzip, caching hints,
content types, security headers, query parameters, RFC 5005 paging, JSON Feed and OPML."""

from __future__ import annotations

import gzip
import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import TEST_BASE_URL, GunicornServer

FEEDS = [
    "/feed.rss",
    "/feed.atom",
    "/feed.json",
    "/topics/ai.rss",
    "/topics/ai.atom",
    "/topics/ai.json",
    "/providers/techcrunch.com.rss",
    "/providers/techcrunch.com.atom",
    "/providers/techcrunch.com.json",
]
PAGES = ["/", "/topics/ai", "/providers/techcrunch.com"]
JSON_ROUTES = ["/topics.json", "/providers.json", "/healthz"]
ALL_ROUTES = FEEDS + PAGES + JSON_ROUTES + ["/feeds.opml"]
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json",
    ".opml": "text/x-opml; charset=utf-8",
}
ATOM = "{http://www.w3.org/2005/Atom}"


def expected_type(path: str) -> str:
    if path in JSON_ROUTES:
        return "application/json"
    if path in PAGES:
        return "text/html; charset=utf-8"
    return CONTENT_TYPES[Path(path).suffix]


# --- against a running gunicorn -----------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    seeds = tmp_path_factory.mktemp("http") / "seeds"
    seeds.mkdir()
    for source in (Path(__file__).parent.parent / "seeds").iterdir():
        (seeds / source.name).write_bytes(source.read_bytes())
    running = gunicorn_launcher(
        seeds, tmp_path_factory.mktemp("logs"), env={"FEEDSERVER_RELOAD_INTERVAL": "1"}
    )
    running.seeds = seeds  # type: ignore[attr-defined]
    yield running
    running.stop()


def request(
    server: GunicornServer, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(server.url + path, method=method)
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("path", ALL_ROUTES)
def test_running_server_headers(server: GunicornServer, path: str) -> None:
    status, headers, _ = request(server, path)
    assert status == 200
    assert headers["Content-Type"] == expected_type(path)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
    if path in PAGES:
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    if path != "/healthz":
        if path in FEEDS:
            # Readers keep a feed as long as it goes between articles; shared caches revalidate
            # every reload_interval.
            assert re.fullmatch(r"public, max-age=\d+, s-maxage=1", headers["Cache-Control"])
        else:
            assert headers["Cache-Control"] == "public, max-age=1"
        assert "Accept-Encoding" in headers["Vary"]
        # The validator comes from the bytes: every worker gives the same one.
        etags = {request(server, path)[1]["ETag"] for _ in range(6)}
        assert etags == {headers["ETag"]}


@pytest.mark.parametrize("path", FEEDS)
def test_running_server_conditional_get(server: GunicornServer, path: str) -> None:
    _, headers, _ = request(server, path)
    status, again, body = request(server, path, If_None_Match=headers["ETag"])
    assert (status, body) == (304, b"")
    assert again["ETag"] == headers["ETag"]
    status, _, body = request(server, path, If_Modified_Since=headers["Last-Modified"])
    assert (status, body) == (304, b"")
    # RFC 9110: If-None-Match wins over If-Modified-Since.
    status, _, body = request(
        server, path, If_None_Match='"other"', If_Modified_Since=headers["Last-Modified"]
    )
    assert status == 200 and body


@pytest.mark.parametrize("path", ALL_ROUTES)
def test_running_server_head_matches_get(server: GunicornServer, path: str) -> None:
    _, get_headers, _ = request(server, path)
    status, head_headers, body = request(server, path, method="HEAD")
    assert status == 200 and body == b""
    # /healthz changes with every reload; its headers are compared by name only.
    varying = {"Date"} | ({"ETag", "Content-Length"} if path == "/healthz" else set())
    assert head_headers.keys() == get_headers.keys()
    for header in get_headers.keys() - varying:
        assert head_headers.get(header) == get_headers[header], header


@pytest.mark.parametrize("path", FEEDS + PAGES)
def test_running_server_gzip_round_trip(server: GunicornServer, path: str) -> None:
    _, _, plain = request(server, path)
    _, headers, packed = request(server, path, Accept_Encoding="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed) == plain
    assert int(headers["Content-Length"]) == len(packed) < len(plain)


def test_running_server_changed_feed_gets_a_new_etag(server: GunicornServer) -> None:
    _, headers, _ = request(server, "/topics/ai.atom")
    seeds: Path = server.seeds  # type: ignore[attr-defined]
    path = next(seeds.glob("000_*"))
    path.write_text(path.read_text().replace("Team To Build", "Team Up To Build"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    deadline = 60.0  # generous: the reload job may run late on a loaded machine
    import time

    start = time.monotonic()
    while time.monotonic() - start < deadline:
        status, new, body = request(server, "/topics/ai.atom", If_None_Match=headers["ETag"])
        if status == 200:
            assert new["ETag"] != headers["ETag"]
            assert b"Team Up To Build" in body
            return
        time.sleep(0.2)
    pytest.fail("a changed feed kept answering 304")


# --- with the test client -----------------------------------------------------------------


def test_ttl_matches_max_age(make_app: Callable[..., Flask], seeds_dir: Path) -> None:
    client = make_app(seeds_dir, reload_interval=300).test_client()
    response = client.get("/feed.rss")
    cache_control = response.headers["Cache-Control"]
    max_age = int(cache_control.removeprefix("public, max-age=").partition(",")[0])
    assert cache_control == f"public, max-age={max_age}, s-maxage=300"
    ttl = ElementTree.fromstring(response.data).findtext("channel/ttl")
    assert ttl == str(max_age // 60)


def test_last_modified_follows_content_not_the_clock(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", publishedDateTime="2020-01-01T00:00:00Z", mtime=1_500_000_000)
    write_seed("b.txt", publishedDateTime="2020-02-01T00:00:00Z", mtime=1_500_000_000)
    app = make_app(tmp_seeds, base_url=TEST_BASE_URL)
    client = app.test_client()
    first = client.get("/feed.atom").headers["Last-Modified"]
    assert first == "Sat, 01 Feb 2020 00:00:00 GMT"  # the newest entry, files being older
    app.extensions["feedserver.store"].reload()
    assert client.get("/feed.atom").headers["Last-Modified"] == first
    # Unpublishing the older article changes the feed: Last-Modified moves to that edit.
    write_seed("a.txt", published=False, publishedDateTime="2020-01-01T00:00:00Z", mtime=1.7e9)
    app.extensions["feedserver.store"].reload()
    response = client.get("/feed.atom", headers={"If-Modified-Since": first})
    assert response.status_code == 200
    assert response.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=501", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("limit=1&limit=2", "limit"),
        ("page=0", "page"),
        ("page=-3", "page"),
        ("page=x", "page"),
        ("page=1&page=2", "page"),
        ("min_quality=high", "min_quality"),
        ("min_quality=nan", "min_quality"),
        ("min_quality=inf", "min_quality"),
        ("min_quality=1&min_quality=2", "min_quality"),
        ("sort=random", "sort"),
        ("q=" + "x" * 300, "q"),
    ],
)
@pytest.mark.parametrize("path", ["/feed.rss", "/topics/ai.atom", "/providers/techcrunch.com.json"])
def test_bad_parameters_are_400_naming_them(
    client: FlaskClient, path: str, query: str, parameter: str
) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert f"'{parameter}'" in response.get_data(as_text=True)
    response = client.get(f"{path}?{query}", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert f"'{parameter}'" in response.get_json()["message"]


def test_unknown_parameters_are_ignored(client: FlaskClient) -> None:
    assert client.get("/feed.rss?utm_source=x&foo=1").status_code == 200


@pytest.fixture
def many(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> FlaskClient:
    """130 published articles; some share a date, quality and heat to test tie-breaking."""
    for n in range(130):
        write_seed(
            f"{n:03d}.txt",
            title=f"Story {n} about {'rockets' if n % 3 == 0 else 'rivers'}",
            excerpt=f"Excerpt {n}, {'Blue' if n % 2 else 'green'} edition",
            publishedDateTime=f"2021-03-{1 + n % 28:02d}T10:00:00Z",
            quality=n % 7,
            heat=n % 5,
        )
    return make_app(tmp_seeds, base_url=TEST_BASE_URL).test_client()


def next_link(body: bytes, extension: str) -> str | None:
    if extension == "json":
        return json.loads(body).get("next_url")  # type: ignore[no-any-return]
    root = ElementTree.fromstring(body)
    for link in root.iter(f"{ATOM}link"):
        if link.get("rel") == "next":
            return link.get("href")
    return None


@pytest.mark.parametrize("extension", ["rss", "atom", "json"])
def test_following_next_visits_every_article_once(many: FlaskClient, extension: str) -> None:
    url: str | None = f"{TEST_BASE_URL}/feed.{extension}?limit=25"
    seen: list[str] = []
    pages = 0
    while url:
        response = many.get(url.removeprefix(TEST_BASE_URL))
        assert response.status_code == 200
        parsed = feedparser.parse(response.data) if extension != "json" else None
        if parsed is not None:
            assert not parsed.bozo
            seen += [entry.link for entry in parsed.entries]
        else:
            seen += [item["url"] for item in json.loads(response.data)["items"]]
        url = next_link(response.data, extension)
        pages += 1
    assert pages == 6
    assert len(seen) == len(set(seen)) == 130


def test_paging_links_follow_rfc_5005(many: FlaskClient) -> None:
    root = ElementTree.fromstring(many.get("/feed.atom?limit=25&page=2&q=story").data)
    links = {link.get("rel"): link.get("href") for link in root.iter(f"{ATOM}link")}
    base = f"{TEST_BASE_URL}/feed.atom?limit=25&q=story"
    assert links["self"] == f"{TEST_BASE_URL}/feed.atom?limit=25&page=2&q=story"
    assert links["first"] == f"{base}&page=1"
    assert links["previous"] == f"{base}&page=1"
    assert links["next"] == f"{base}&page=3"
    assert links["last"] == f"{base}&page=6"
    rss = ElementTree.fromstring(many.get("/feed.rss?limit=25&page=6").data)
    rels = {link.get("rel") for link in rss.iter(f"{ATOM}link")}
    assert rels == {"self", "first", "previous", "last"}
    assert many.get("/feed.rss?limit=25&page=7").status_code == 404


def test_q_needs_every_word_case_insensitively_as_plain_text(many: FlaskClient) -> None:
    items = many.get("/feed.json?q=ROCKETS+blue&limit=500").get_json()["items"]
    expected = [n for n in range(130) if n % 3 == 0 and n % 2]
    assert sorted(int(i["title"].split()[1]) for i in items) == expected
    assert many.get("/feed.json?q=.*").get_json()["items"] == []


def test_min_quality_and_sort_are_stable(many: FlaskClient) -> None:
    items = many.get("/feed.json?min_quality=5&sort=quality&limit=500").get_json()["items"]
    qualities = [int(i["title"].split()[1]) % 7 for i in items]
    assert qualities and min(qualities) >= 5
    assert qualities == sorted(qualities, reverse=True)
    again = many.get("/feed.json?min_quality=5&sort=quality&limit=500").get_json()["items"]
    assert [i["url"] for i in items] == [i["url"] for i in again]
    by_heat = many.get("/feed.json?sort=heat&limit=500").get_json()["items"]
    heats = [int(i["title"].split()[1]) % 5 for i in by_heat]
    assert heats == sorted(heats, reverse=True)
    # Ties: newer first, then URL.
    top = [i for i in by_heat if int(i["title"].split()[1]) % 5 == 4]
    keys = [(i["date_published"], i["url"]) for i in top]
    assert keys == sorted(keys, key=lambda k: (-int(k[0][:10].replace("-", "")), k[1]))


def test_json_feed_has_the_same_entries_as_the_xml_feeds(client: FlaskClient) -> None:
    feed = client.get("/topics/ai.json").get_json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == f"{TEST_BASE_URL}/topics/ai.json"
    assert feed["home_page_url"] == f"{TEST_BASE_URL}/topics/ai"
    atom = feedparser.parse(client.get("/topics/ai.atom").data)
    assert [i["id"] for i in feed["items"]] == [e.id for e in atom.entries]
    assert [i["title"] for i in feed["items"]] == [e.title for e in atom.entries]
    for item in feed["items"]:
        assert item["authors"][0]["name"] and item["tags"] and item["content_html"]


def test_opml_imports_every_feed(client: FlaskClient) -> None:
    response = client.get("/feeds.opml")
    root = ElementTree.fromstring(response.data)
    assert root.get("version") == "2.0"
    everything, *groups = root.findall("body/outline")
    assert everything.get("xmlUrl") == f"{TEST_BASE_URL}/feed.rss"
    assert [g.get("text") for g in groups] == ["Topics", "Providers"]
    feeds = [everything, *(o for g in groups for o in g.findall("outline"))]
    assert len(feeds) == 5
    for outline in feeds:
        assert outline.get("type") == "rss" and outline.get("title")
        feed = client.get(outline.get("xmlUrl", "").removeprefix(TEST_BASE_URL))
        assert feed.status_code == 200
        assert not feedparser.parse(feed.data).bozo
        assert client.get(outline.get("htmlUrl", "").removeprefix(TEST_BASE_URL)).status_code == 200

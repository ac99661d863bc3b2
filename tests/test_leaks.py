"""Nothing unpublished, and no `secured` value, in any response: a crawl of every link
reachable from `/` and `/feeds.opml`, with and without query parameters, over seeds that mix
published articles with unpublished ones carrying distinctive markers.

Every unpublished article's title, excerpt, URL, image, related coverage, own topics and own
provider carry a token `LEAKMARKER<n><letter>`; every article's `secured` value (and amp URL)
carries `SECUREDVALUE<n>S` (`AMPMARKER<n>A`). No body, decoded and HTML-unescaped and
percent-decoded, may show one of them.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import TEST_BASE_URL

FORBIDDEN = re.compile(r"(?:LEAKMARKER|SECUREDVALUE|AMPMARKER)\d+[A-Z]", re.IGNORECASE)
FEED = re.compile(r"^/(?:feed|topics/[^/]+|providers/[^/]+)\.(?:rss|atom|json)$")
ABSOLUTE_URL = re.compile(r"""https?://[^\s"'<>\\]+""")
ATTRIBUTE_URL = re.compile(r"""(?:href|src|xmlUrl|htmlUrl|url|domain)\s*=\s*["']([^"']+)["']""")
# Asked of every feed found without a query; paging links they carry are crawled as found.
VARIANTS = (
    "limit=1",
    "page=2&limit=1",
    "q=leakmarker",  # a prefix of every marker: matches hidden articles, echoes no marker
    "q=hidden",
    "q=story",
    "sort=heat",
    "sort=quality",
    "min_quality=1",
    "sort=heat&limit=1&min_quality=1",
    "q=leakmarker&sort=quality&page=1&limit=2",
)
MAX_REQUESTS = 5000
SHARED = {"name": "Shared Press", "domain": "www.shared.example"}
OTHER = {"name": "Other Wire", "domain": "other.example"}

# Collections that only unpublished articles name: each must be 404 in every form.
HIDDEN_TOPICS = ("hidden-leakmarker2n", "future-leakmarker4n", "dup-leakmarker6n")
HIDDEN_PROVIDERS = ("leakmarker3d.example", "leakmarker4d.example", "leakmarker5p-agency")
# Collections of published articles, to prove the crawl reaches them.
VISIBLE_TOPICS = ("shared-topic", "visible-topic", "other-topic")
VISIBLE_PROVIDERS = ("shared.example", "other.example")


def secured(n: int) -> str:
    """The distinctive `secured` value of article n."""
    return f"SECUREDVALUE{n}S+k/Zq9=="


def hidden(n: int, **fields: Any) -> dict[str, Any]:
    """The fields of unpublished article n: every text and URL carries a marker."""
    data: dict[str, Any] = {
        "title": f"Hidden story LEAKMARKER{n}T",
        "excerpt": f"Hidden excerpt LEAKMARKER{n}X about leakmarkers & <b>tags</b>",
        "webUrl": f"https://news.example/LEAKMARKER{n}U",
        "ampWebUrl": f"https://amp.news.example/AMPMARKER{n}A",
        "provider": SHARED,
        "topics": ["Shared Topic"],
        "quality": 1000 + n,  # would sort first
        "heat": 1000 + n,
        "images": [{"url": f"https://img.example/LEAKMARKER{n}I.jpg", "width": 10, "height": 10}],
        "related": [
            {
                "title": f"Related LEAKMARKER{n}R",
                "webUrl": f"https://related.example/LEAKMARKER{n}L",
                "provider": {"name": f"LEAKMARKER{n}Q Related"},
            }
        ],
        "secured": secured(n),
    }
    data.update(fields)
    return data


@pytest.fixture
def leak_seeds(tmp_seeds: Path, write_seed: Callable[..., Path]) -> Path:
    """Published articles, and unpublished ones that share topics and providers with them
    or have topics and providers of their own."""
    published: list[tuple[str, dict[str, Any]]] = [
        ("p1.txt", {"topics": ["Shared Topic", "Visible Topic"], "provider": SHARED}),
        ("p2.txt", {"topics": ["Shared Topic"], "provider": OTHER, "quality": 50}),
        ("p3.txt", {"topics": ["Visible Topic", "Other Topic"], "provider": SHARED}),
        ("p4.txt", {"topics": ["Other Topic"], "provider": OTHER, "heat": 7, "quality": 0}),
        ("p5.txt", {"topics": ["Shared Topic"], "provider": SHARED, "quality": 90}),
        ("nested/p6.txt", {"topics": ["Shared Topic", "Other Topic"], "provider": OTHER}),
    ]
    for n, (name, fields) in enumerate(published, 100):
        write_seed(
            name,
            title=f"Visible story {n} about leakmarkers",
            excerpt=f"A visible excerpt, number {n}, hidden from nobody.",
            webUrl=f"https://news.example/visible-{n}",
            publishedDateTime=f"2021-03-{n - 90:02d}T08:00:00Z",
            ampWebUrl=f"https://amp.news.example/AMPMARKER{n}A",
            cdnAmpWebUrl=f"https://cdn.example/AMPMARKER{n}A",
            secured=secured(n),
            **fields,
        )
    write_seed("p7.txt", omit=("provider",), secured=secured(107), topics=["Visible Topic"])

    write_seed("u1.txt", **hidden(1, published=False))
    write_seed(
        "u2.txt", omit=("published",), **hidden(2, topics=["Shared Topic", "Hidden LEAKMARKER2N"])
    )
    write_seed(
        "u3.txt",
        **hidden(
            3,
            published="true",
            topics=["Visible Topic"],
            provider={"name": "LEAKMARKER3P Press", "domain": "LEAKMARKER3D.example"},
        ),
    )
    write_seed(
        "u4.txt",
        **hidden(
            4,
            published=True,
            publishedDateTime="2999-01-01T00:00:00Z",
            topics=["Shared Topic", "Future LEAKMARKER4N"],
            provider={"name": "LEAKMARKER4P Wire", "domain": "www.leakmarker4d.example"},
        ),
    )
    write_seed(
        "sub/dir/u5.txt",
        **hidden(
            5, published=False, topics=["Other Topic"], provider={"name": "LEAKMARKER5P Agency"}
        ),
    )
    # The same webUrl twice: the newer file, unpublished, is the article; the older one,
    # published, must not be served either.
    an_hour_ago = time.time() - 3600
    write_seed(
        "dup_old.txt",
        mtime=an_hour_ago,
        **hidden(6, published=True, topics=["Shared Topic", "Dup LEAKMARKER6N"]),
    )
    write_seed(
        "dup_new.txt",
        **hidden(7, published=False, webUrl="https://news.example/LEAKMARKER6U"),
    )
    write_seed("u8.txt", **hidden(8, published="yes"))  # a quoted string, not YAML's yes
    write_seed("u9.txt", **hidden(9, published=1))
    write_seed("u10.txt", **hidden(10, published=None, provider=OTHER))
    write_seed("u11.txt", **hidden(11, published="false", topics=["Visible Topic"]))
    return tmp_seeds


# --- the crawler ----------------------------------------------------------------------------


@dataclass
class Fetched:
    """One crawled request and what came back."""

    url: str  # path and query
    headers: dict[str, str]
    status: int
    text: str  # the decoded body, with the response headers on top


def decode(response: Any) -> str:
    """The response headers and its body, ungzipped and decoded, as one text."""
    body: bytes = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    head = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return head + "\n\n" + body.decode("utf-8", errors="replace")


def links(text: str, page_url: str) -> Iterator[str]:
    """Every URL in a text: absolute ones anywhere, relative ones in link attributes."""
    for match in ABSOLUTE_URL.finditer(text):
        yield html.unescape(match.group(0)).rstrip(".,;)")
    for match in ATTRIBUTE_URL.finditer(text):
        yield urljoin(page_url, html.unescape(match.group(1)))
    body = text.split("\n\n", 1)[1]
    if body.lstrip().startswith(("{", "[")):  # JSON: every string in it
        yield from json_strings(json.loads(body))


def json_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (url, feeds, next_url, feed_url, home_page_url, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


class Crawler:
    """Breadth-first over every same-site URL, asking each feed's variants too."""

    def __init__(self, client: FlaskClient, site: str) -> None:
        self.client = client
        self.site = site  # scheme://host of the links the app makes
        self.netloc = urlsplit(site).netloc
        self.fetched: dict[tuple[str, tuple[tuple[str, str], ...]], Fetched] = {}
        self._queue: deque[tuple[str, tuple[tuple[str, str], ...]]] = deque()

    def local(self, url: str) -> str | None:
        """The path and query of a URL of this site, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc != self.netloc:
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def add(self, path: str, **headers: str) -> None:
        """Queue a request unless it was made or queued already."""
        key = (path, tuple(sorted(headers.items())))
        if key not in self.fetched and key not in self._queue:
            self._queue.append(key)

    def get(self, path: str, **headers: str) -> Fetched:
        """Make one request now and keep what came back."""
        response = self.client.get(path, headers={"Host": self.netloc, **headers})
        fetched = Fetched(path, headers, response.status_code, decode(response))
        self.fetched[(path, tuple(sorted(headers.items())))] = fetched
        return fetched

    def crawl(self, *starts: str) -> None:
        """Request everything queued and every same-site link found, until none is new."""
        for start in starts:
            self.add(start)
        while self._queue:
            assert len(self.fetched) < MAX_REQUESTS, "the crawl does not end"
            path, headers = self._queue.popleft()
            fetched = self.get(path, **dict(headers))
            if fetched.status == 301:  # a URL people type: follow it to the canonical one
                location = fetched.text.split("\n\n", 1)[0].partition("Location: ")[2]
                self._add_url(urljoin(self.site + path, location.split("\n", 1)[0]))
            elif fetched.status == 200:
                for url in links(fetched.text, self.site + path):
                    self._add_url(url)
                if FEED.match(path):
                    self._add_feed_requests(path)

    def _add_url(self, url: str) -> None:
        """Queue a URL of this site; ignore one of another."""
        found = self.local(url)
        if found is not None:
            self.add(found)

    def _add_feed_requests(self, path: str) -> None:
        """Queue a feed's variants: query parameters, gzip, a preview, a conditional GET."""
        for variant in VARIANTS:
            self.add(f"{path}?{variant}")
        self.add(path, **{"Accept-Encoding": "gzip"})
        self.add(path, **{"Sec-Fetch-Dest": "document"})  # a browser's preview
        etag = self.client.get(path, headers={"Host": self.netloc}).headers.get("ETag")
        if etag:
            self.add(path, **{"If-None-Match": etag})

    def paths(self) -> set[str]:
        """Every path (with query) requested."""
        return {fetched.url for fetched in self.fetched.values()}


def leaks(text: str) -> set[str]:
    """Every forbidden token in a text, as sent, HTML-unescaped or percent-decoded."""
    forms = (text, html.unescape(text), unquote(text), html.unescape(html.unescape(text)))
    return {token.upper() for form in forms for token in FORBIDDEN.findall(form)}


def crawl_site(app: Flask, site: str) -> Crawler:
    """Crawl from the home page, the OPML and the listings, then guess the URLs of the
    topics and providers that only unpublished articles name."""
    crawler = Crawler(app.test_client(), site)
    crawler.crawl("/", "/feeds.opml", "/healthz", "/topics.json", "/providers.json")
    for path in hidden_paths():
        crawler.add(path)
        crawler.add(path, Accept="application/json")
    crawler.crawl()
    return crawler


def hidden_paths() -> list[str]:
    """The pages and feeds of the topics and providers only unpublished articles name."""
    suffixes = ("", ".rss", ".atom", ".json")
    topics = [f"/topics/{key}{suffix}" for key in HIDDEN_TOPICS for suffix in suffixes]
    return topics + [f"/providers/{key}{suffix}" for key in HIDDEN_PROVIDERS for suffix in suffixes]


def assert_crawl_went_everywhere(crawler: Crawler) -> None:
    """Every visible collection in every format, with variants, paging links, the
    stylesheet, the OPML's feeds, gzip and conditional requests."""
    fetched = list(crawler.fetched.values())
    paths = crawler.paths()
    assert len(fetched) > 300
    for key in VISIBLE_TOPICS:
        for suffix in ("", ".rss", ".atom", ".json", ".rss?limit=1", ".json?q=leakmarker"):
            assert f"/topics/{key}{suffix}" in paths
    for key in VISIBLE_PROVIDERS:
        for suffix in ("", ".rss", ".atom", ".json", ".atom?sort=heat"):
            assert f"/providers/{key}{suffix}" in paths
    assert "/static/style.css" in paths
    assert "/topics/shared-topic.rss?limit=1&page=3" in paths  # followed a next link
    assert any(f.headers.get("Accept-Encoding") == "gzip" for f in fetched)
    assert any(f.status == 304 for f in fetched)
    every_text = "\n".join(f.text for f in fetched)
    for n in range(100, 106):
        assert f"Visible story {n} about leakmarkers" in every_text


@pytest.mark.parametrize("base_url", [TEST_BASE_URL, None], ids=["base_url", "request_host"])
def test_crawl_finds_nothing_unpublished_and_no_secured_value(
    make_app: Callable[..., Flask], leak_seeds: Path, base_url: str | None
) -> None:
    settings = {"base_url": base_url} if base_url else {}
    app = make_app(leak_seeds, **settings)
    site = base_url or "http://localhost"
    crawler = crawl_site(app, site)
    fetched = list(crawler.fetched.values())
    assert_crawl_went_everywhere(crawler)
    # q=leakmarker matches the visible articles too: the filter ran over a mixed collection.
    searched = crawler.get("/feed.json?q=leakmarker")
    assert len(json.loads(searched.text.split("\n\n", 1)[1])["items"]) == 6

    statuses = {f.url: f.status for f in fetched}
    assert not {url: s for url, s in statuses.items() if s not in (200, 301, 304, 404)}
    assert any(f.headers.get("Sec-Fetch-Dest") for f in fetched)  # previews were crawled
    assert {path: statuses[path] for path in hidden_paths()} == dict.fromkeys(hidden_paths(), 404)

    found = {f"{f.url} {f.headers}": sorted(leaks(f.text)) for f in fetched if leaks(f.text)}
    assert not found


def test_healthz_reports_problems_without_unpublished_content(
    make_app: Callable[..., Flask], leak_seeds: Path
) -> None:
    """Every withheld file is reported, by file name and reason, with no article text."""
    client = make_app(leak_seeds, base_url=TEST_BASE_URL).test_client()
    health = client.get("/healthz").get_json()
    reported = {problem["file"] for problem in health["errors"]}
    assert {"u2.txt", "u3.txt", "u8.txt", "u9.txt", "u10.txt", "u11.txt"} <= reported
    assert health["articles"] == 7
    text = json.dumps(health)
    assert not leaks(text)


def test_healthz_does_not_show_the_url_of_an_unpublished_duplicate(
    make_app: Callable[..., Flask], leak_seeds: Path
) -> None:
    client = make_app(leak_seeds, base_url=TEST_BASE_URL).test_client()
    assert "LEAKMARKER6U" not in client.get("/healthz").get_data(as_text=True)


@pytest.mark.parametrize("word", ["yes", "on", "Yes", "'true'", "1"])
def test_published_yes_or_on_appears_nowhere(
    make_app: Callable[..., Flask],
    tmp_seeds: Path,
    write_file: Callable[..., Path],
    write_seed: Callable[..., Path],
    word: str,
) -> None:
    """YAML 1.1 spellings of true, written bare, do not publish (the README lists `yes`)."""
    write_seed("visible.txt", topics=["Visible"])
    write_file(
        "yes.txt",
        "---\ntitle: Hidden story LEAKMARKER20T\nwebUrl: https://news.example/LEAKMARKER20U\n"
        f"publishedDateTime: 2021-01-01T00:00:00Z\npublished: {word}\n"
        "topics: [Visible, Own LEAKMARKER20N]\n---\n",
    )
    crawler = crawl_site(make_app(tmp_seeds, base_url=TEST_BASE_URL), TEST_BASE_URL)
    assert len(crawler.fetched) > 50
    assert crawler.get("/topics/own-leakmarker20n.rss").status == 404
    assert not [f.url for f in crawler.fetched.values() if leaks(f.text)]

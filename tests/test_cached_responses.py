"""The cached-response middleware: what it answers from the render cache by itself, and what it
leaves to the app behind it (misses, refused methods and Host headers)."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from feedserver.cache import RenderCache
from feedserver.cached_responses import CachedResponses
from feedserver.responses import Rendered, cache_key, site_base
from feedserver.store import CatalogStore

BASE_URL = "http://feeds.test"
MAX_AGE = 120
BODY = b"<rss>" + b"an item " * 200 + b"</rss>"
Answer = tuple[str, dict[str, str], bytes]


class App:
    """The app behind the middleware: answers 200 "from the app" and notes what it got."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.environs.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from the app"]


@pytest.fixture
def store(make_app: Callable[..., Flask], tmp_seeds: Path) -> CatalogStore:
    """A real store (of no articles): the middleware reads only its current catalog."""
    found: CatalogStore = make_app(tmp_seeds).extensions["feedserver.store"]
    return found


def environ(
    path: str = "/feed.rss",
    method: str = "GET",
    base_url: str = BASE_URL,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    made: dict[str, Any] = EnvironBuilder(
        path=path, method=method, base_url=base_url, headers=list((headers or {}).items())
    ).get_environ()
    return made


def call(middleware: CachedResponses, request: dict[str, Any]) -> Answer:
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    body = b"".join(middleware(request, start_response))
    status, headers = started[-1]
    return status, dict(headers), body


def cached(
    store: CatalogStore, request: dict[str, Any], configured_base: str = BASE_URL
) -> tuple[RenderCache, Rendered]:
    """A render cache holding a feed under the key of `request`."""
    cache = RenderCache()
    rendered = Rendered(BODY, "application/rss+xml; charset=utf-8", None)
    key = cache_key(request, site_base(request, configured_base))
    assert cache.get(store.catalog, key, lambda: rendered) is rendered
    return cache, rendered


def middleware(
    store: CatalogStore, cache: RenderCache, app: App, base_url: str = BASE_URL
) -> CachedResponses:
    return CachedResponses(app, store, cache, base_url, MAX_AGE)


def test_a_cached_response_is_answered_without_the_app(store: CatalogStore) -> None:
    request = environ()
    cache, rendered = cached(store, request)
    app = App()
    status, headers, body = call(middleware(store, cache, app), request)
    assert (status, body) == ("200 OK", BODY)
    assert headers == dict(rendered.headers(False, MAX_AGE))
    assert headers["Cache-Control"] == f"public, max-age={MAX_AGE}"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert request["feedserver.cache"] == "hit"
    assert app.environs == []


def test_a_miss_goes_on_to_the_app(store: CatalogStore) -> None:
    cache, _ = cached(store, environ("/topics/ai.rss"))
    app = App()
    request = environ("/feed.rss")
    assert call(middleware(store, cache, app), request)[2] == b"from the app"
    assert app.environs == [request]
    assert "feedserver.cache" not in request


def test_unknown_parameters_share_the_cached_response(store: CatalogStore) -> None:
    cache, _ = cached(store, environ("/feed.rss"))
    app = App()
    status, _, body = call(middleware(store, cache, app), environ("/feed.rss?utm_source=x"))
    assert (status, body, app.environs) == ("200 OK", BODY, [])


def test_a_matching_if_none_match_gets_a_304_without_body_headers(store: CatalogStore) -> None:
    cache, rendered = cached(store, environ())
    app = App()
    request = environ(headers={"If-None-Match": f'"{rendered.etag}"'})
    status, headers, body = call(middleware(store, cache, app), request)
    assert (status, body) == ("304 Not Modified", b"")
    assert headers["ETag"] == f'"{rendered.etag}"'
    assert not {"Content-Type", "Content-Length", "Content-Encoding"} & headers.keys()
    other = environ(headers={"If-None-Match": '"something-else"'})
    status, _, body = call(middleware(store, cache, app), other)
    assert (status, body) == ("200 OK", BODY)
    assert app.environs == []


def test_head_gets_the_headers_and_no_body(store: CatalogStore) -> None:
    cache, _ = cached(store, environ())
    app = App()
    status, headers, body = call(middleware(store, cache, app), environ(method="HEAD"))
    assert (status, body) == ("200 OK", b"")
    assert headers["Content-Length"] == str(len(BODY))
    assert app.environs == []


def test_gzip_is_answered_to_who_accepts_it(store: CatalogStore) -> None:
    cache, rendered = cached(store, environ())
    app = App()
    request = environ(headers={"Accept-Encoding": "gzip, deflate"})
    status, headers, body = call(middleware(store, cache, app), request)
    assert status == "200 OK" and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == BODY and len(body) < len(BODY)
    assert headers["Content-Length"] == str(len(body))
    assert headers["ETag"] == f'"{rendered.etag}-gz"'
    refused = environ(headers={"Accept-Encoding": "gzip;q=0"})
    assert call(middleware(store, cache, app), refused)[2] == BODY


def test_a_bad_host_is_left_to_the_app_even_when_its_key_is_cached(store: CatalogStore) -> None:
    """Without base_url, links are made from the Host header: one that is no host name is
    refused by the app (400), never answered from the cache."""
    request = environ(base_url="http://bad<host>")
    cache, _ = cached(store, request, configured_base="")
    app = App()
    assert call(middleware(store, cache, app, base_url=""), request)[2] == b"from the app"
    assert app.environs == [request]


def test_each_host_gets_the_response_made_for_it(store: CatalogStore) -> None:
    cache, _ = cached(store, environ(base_url="http://one.test"), configured_base="")
    app = App()
    served = middleware(store, cache, app, base_url="")
    assert call(served, environ(base_url="http://one.test"))[2] == BODY
    assert call(served, environ(base_url="http://two.test"))[2] == b"from the app"


def test_only_get_and_head_are_answered_from_the_cache(store: CatalogStore) -> None:
    cache, _ = cached(store, environ())
    app = App()
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        assert call(middleware(store, cache, app), environ(method=method))[2] == b"from the app"
    assert [e["REQUEST_METHOD"] for e in app.environs] == ["POST", "PUT", "DELETE", "OPTIONS"]


def test_script_name_is_cleared_for_hits_and_misses(store: CatalogStore) -> None:
    cache, _ = cached(store, environ())
    app = App()
    hit = environ(base_url=f"{BASE_URL}/prefix")
    assert hit["SCRIPT_NAME"] == "/prefix" and hit["PATH_INFO"] == "/feed.rss"
    assert call(middleware(store, cache, app), hit)[2] == BODY
    assert hit["SCRIPT_NAME"] == ""
    miss = environ("/topics/ai.rss", base_url=f"{BASE_URL}/prefix")
    assert call(middleware(store, cache, app), miss)[2] == b"from the app"
    assert app.environs[0]["SCRIPT_NAME"] == ""


def test_a_new_catalog_is_not_answered_from_the_old_one(
    store: CatalogStore, write_seed: Callable[..., Path]
) -> None:
    cache, _ = cached(store, environ())
    app = App()
    write_seed("new.txt")
    old = store.catalog
    store.reload()
    assert store.catalog is not old
    assert call(middleware(store, cache, app), environ())[2] == b"from the app"

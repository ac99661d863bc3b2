"""Query parameters a feed does not read: never a 5xx, never a new cache entry, never in a
link. And SCRIPT_NAME, which gunicorn takes from a trusted proxy's header, changes nothing."""

from __future__ import annotations

import ast
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver.query import KNOWN_PARAMETERS

from .conftest import ROOT, TEST_BASE_URL, GunicornServer

ATOM = "{http://www.w3.org/2005/Atom}"
FEEDS = [
    f"{path}.{extension}"
    for path in ("/feed", "/topics/ai", "/providers/techcrunch.com")
    for extension in ("rss", "atom", "json")
]
ROUTES = [
    *FEEDS,
    "/",
    "/topics/ai",
    "/providers/techcrunch.com",
    "/topics.json",
    "/providers.json",
    "/feeds.opml",
    "/healthz",
    "/static/style.css",
    "/topics",
    "/providers",
    "/search",
    "/favicon.ico",
    "/rss.xml",
    "/topics/AI.rss",
    "/topics/nope.rss",
    "/providers/nope.example",
    "/nope",
]


# One route of each kind: a feed of each collection kind (in each format), each page kind,
# the listings, health, static files, a redirect and a 404.
KINDS = [
    "/feed.rss",
    "/topics/ai.atom",
    "/providers/techcrunch.com.json",
    "/",
    "/topics/ai",
    "/providers/techcrunch.com",
    "/topics",
    "/search",
    "/topics.json",
    "/feeds.opml",
    "/healthz",
    "/static/style.css",
    "/favicon.ico",
    "/rss.xml",
    "/topics/AI.rss",
    "/topics/nope.rss",
    "/nope",
]


def expected_status(route: str) -> int:
    if "nope" in route:
        return 404
    return 301 if route in ("/rss.xml", "/topics/AI.rss") else 200


def internal_names() -> set[str]:
    """Every name the code uses: arguments, variables, attributes and keywords of feedserver."""
    names: set[str] = set()
    for source in (ROOT / "feedserver").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            if isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
    return names


INTERNAL = sorted(internal_names() - set(KNOWN_PARAMETERS))


def test_the_internal_names_include_those_that_once_collided() -> None:
    assert {"collection", "extension", "kind", "key", "query", "self", "number"} <= set(INTERNAL)
    assert len(INTERNAL) > 200


def body(client: FlaskClient, url: str, **headers: str) -> tuple[int, bytes]:
    response = client.get(url, headers=headers)
    return response.status_code, response.get_data()


def redirect(route: str) -> bool:
    """A 301 keeps the request's query as it is (redirects.py): no byte comparison there."""
    return expected_status(route) == 301


def same_answer(route: str, plain: tuple[int, bytes], got: tuple[int, bytes]) -> bool:
    """The same status and bytes; for a redirect, the same status."""
    return got[0] == plain[0] if redirect(route) else got == plain


@pytest.mark.parametrize("route", KINDS)
def test_every_internal_name_as_a_parameter_changes_nothing(
    client: FlaskClient, route: str
) -> None:
    plain = body(client, route)
    assert plain[0] == expected_status(route)
    for name in INTERNAL:
        assert same_answer(route, plain, body(client, f"{route}?{name}=1")), (route, name)
    for form in ("{0}=x&{0}=", "{0}", "{0}=%22%3C%2C%3E%00"):  # repeated, bare, odd values
        query = "&".join(form.format(name) for name in INTERNAL)
        assert same_answer(route, plain, body(client, f"{route}?{query}")), (route, form)


@pytest.mark.parametrize("route", FEEDS)
def test_unknown_names_beside_known_ones_are_dropped(client: FlaskClient, route: str) -> None:
    plain = body(client, f"{route}?limit=1&page=1")
    assert plain[0] == 200
    for name in INTERNAL:
        assert body(client, f"{route}?{name}=1&limit=1&page=1") == plain, name


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(ROUTES),
    pairs=st.lists(st.tuples(st.text(min_size=1, max_size=30), st.text(max_size=30)), max_size=5),
)
def test_random_parameters_never_cause_a_5xx(
    client: FlaskClient, route: str, pairs: list[tuple[str, str]]
) -> None:
    response = client.get(route, query_string=pairs)
    assert response.status_code < 500
    if not redirect(route) and not any(name in KNOWN_PARAMETERS for name, _ in pairs):
        assert (response.status_code, response.get_data()) == body(client, route)


@pytest.mark.parametrize("route", ["/feed.rss", "/topics/ai.atom", "/"])
def test_bytes_that_are_not_utf8_in_the_query_are_no_5xx(client: FlaskClient, route: str) -> None:
    for query in ("x=\xff\xfe", "\xff=1", "limit=1&q=\xe9t\xe9", "q=%ff%fe"):
        response = client.get(route, environ_overrides={"QUERY_STRING": query})
        assert response.status_code < 500, query


def test_junk_parameters_share_one_cache_entry(app: Flask) -> None:
    client = app.test_client()
    cache = app.extensions["feedserver.cache"]
    first = client.get("/feed.atom?limit=2&x=0")
    renders, entries = cache.renders, len(cache)
    for n in range(1, 200):
        response = client.get(f"/feed.atom?x={n}&limit=2&utm_source={n}")
        assert response.get_data() == first.get_data()
    assert (cache.renders, len(cache)) == (renders, entries)


def links_of(data: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(data)
    return {str(link.get("rel")): str(link.get("href")) for link in root.iter(f"{ATOM}link")}


def test_parameters_in_any_order_get_one_response_with_canonical_links(app: Flask) -> None:
    client = app.test_client()
    cache = app.extensions["feedserver.cache"]
    orders = [
        "limit=1&page=2&q=the&sort=heat",
        "sort=heat&q=the&page=2&limit=1",
        "q=the&junk=1&sort=heat&limit=1&page=2",
    ]
    responses = [client.get(f"/feed.atom?{query}") for query in orders]
    assert responses[0].status_code == 200
    assert all(r.get_data() == responses[0].get_data() for r in responses)
    assert cache.renders == 1
    links = links_of(responses[0].get_data())
    base = f"{TEST_BASE_URL}/feed.atom?limit=1"
    assert links["self"] == f"{base}&page=2&q=the&sort=heat"
    assert links["first"] == f"{base}&page=1&q=the&sort=heat"
    assert links["previous"] == f"{base}&page=1&q=the&sort=heat"


def test_feed_parameters_are_percent_encoded_in_links(client: FlaskClient) -> None:
    response = client.get("/feed.atom", query_string={"q": 'a "b" <c>,d', "limit": "1"})
    assert response.status_code == 200
    assert links_of(response.get_data())["self"] == (
        f"{TEST_BASE_URL}/feed.atom?limit=1&q=a+%22b%22+%3Cc%3E%2Cd"
    )


# --- SCRIPT_NAME ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", [r for r in ROUTES if r != "/healthz"])  # it has a clock
def test_script_name_changes_no_response(
    make_app: Callable[..., Flask], seeds_dir: Path, route: str
) -> None:
    """Neither the response to the request that carries it, nor any cached for others."""
    app = make_app(seeds_dir)  # no base_url: links follow the host, the riskier case
    client = app.test_client()
    poisoned = client.get(route, environ_overrides={"SCRIPT_NAME": "/evil"})
    assert poisoned.status_code == expected_status(route)
    plain = client.get(route)
    fresh = make_app(seeds_dir).test_client().get(route)
    assert poisoned.get_data() == plain.get_data() == fresh.get_data()
    assert b"/evil" not in plain.get_data()
    assert "/evil" not in str(plain.headers)


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    seeds = tmp_path_factory.mktemp("script-name") / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    running = gunicorn_launcher(seeds, tmp_path_factory.mktemp("logs"), workers=1)
    yield running
    running.stop()


def raw_get(server: GunicornServer, path: str, *headers: str) -> bytes:
    address = urlsplit(server.url)
    lines = [f"GET {path} HTTP/1.1", "Host: feeds.test", *headers, "Connection: close", "", ""]
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("route", ["/", "/topics/ai", "/feed.atom", "/topics.json"])
def test_gunicorn_script_name_header_poisons_no_cached_page(
    server: GunicornServer, route: str
) -> None:
    """gunicorn honours SCRIPT_NAME from 127.0.0.1 (a trusted proxy address by default)."""
    forged = raw_get(server, f"/evil{route}", "SCRIPT_NAME: /evil")
    assert forged.startswith(b"HTTP/1.1 200"), forged[:200]
    plain = raw_get(server, route)
    assert plain.startswith(b"HTTP/1.1 200")
    assert b"/evil" not in plain and b"/evil" not in forged


def test_page_links_carry_no_unknown_parameter(
    make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    app = make_app(seeds_dir, base_url=TEST_BASE_URL, page_size=1)
    client = app.test_client()
    plain = client.get("/?page=1&sort=heat")
    assert plain.status_code == 200
    assert 'href="?sort=heat&amp;page=2"' in plain.get_data(as_text=True)  # the older page
    renders = app.extensions["feedserver.cache"].renders
    for junk in ("utm_source=x", "collection=1", "page_size=9", "self=1&key=2"):
        response = client.get(f"/?{junk}&page=1&sort=heat")
        assert response.get_data() == plain.get_data(), junk
    assert app.extensions["feedserver.cache"].renders == renders

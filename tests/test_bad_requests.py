"""Hostile requests: odd paths are 404 and never a file read, bad query values are 400s that
name the parameter, a forged Host never reaches anyone else, other methods are 405, and no
error body shows a stack trace, a path of the machine or a setting's value."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.config import app_settings
from feedserver.render import RENDERERS

from .conftest import ROOT, TEST_BASE_URL, GunicornServer

FEEDS = ["/feed.rss", "/topics/ai.atom", "/providers/techcrunch.com.json"]
PAGES = ["/", "/topics/ai", "/providers/techcrunch.com"]
OTHERS = ["/topics.json", "/providers.json", "/feeds.opml", "/healthz", "/static/style.css"]
ROUTES = FEEDS + PAGES + OTHERS
LONG = "x" * 5000

BAD_PATHS = [
    # traversal, plain and encoded
    "/topics/..%2f..%2fetc%2fpasswd.rss",
    "/topics/%2e%2e.rss",
    "/topics/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/topics/..",
    "/topics/.rss",
    "/providers/..%2F.atom",
    "/providers/..%2F..%2F..%2Fetc%2Fpasswd.json",
    "/providers/.",
    "/topics/\\..\\..\\etc\\passwd.rss",
    "/topics/%25252e%25252e.rss",
    "/../../etc/passwd",
    # repeated slashes name nothing, not even a feed (one URL per feed)
    "//feed.rss",
    "///topics/ai.rss",
    "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "///etc/passwd",
    "/static/../../etc/passwd",
    "/static/..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%5c..%5cetc%5cpasswd",
    "/static/../web.py",
    "/static/../templates/base.html",
    "/static/../../config/feedserver.yaml",
    "/static/../../wsgi.py",
    "/static/..",
    "/static/C:%5cwindows%5cwin.ini",
    # NUL and other bytes
    "/topics/%00.rss",
    "/topics/a%00b",
    "/topics/ai%00.rss",
    "/feed.rss%00",
    "/providers/%00",
    "/static/style.css%00",
    "/topics/%ff%fe.rss",
    "/topics/%c0%ae%c0%ae.rss",
    "/topics/%0d%0aSet-Cookie:%20x=1.rss",
    # very long
    f"/topics/{LONG}.rss",
    f"/providers/{LONG}",
    f"/{LONG}",
    # not ASCII
    "/topics/日本語.rss",
    "/topics/%E6%97%A5%E6%9C%AC.atom",
    "/providers/%C3%A9.json",
    "/providers/é",
    # extra path parts and files of the machine or the repository
    "/topics/ai.rss/...",
    "/topics/ai.rss/..",
    "/topics/ai/..",
    "/topics/ai.rss/extra",
    "/feed.rss/",
    "/topics.json/..",
    "/healthz/..%2f",
    "/etc/passwd",
    "/proc/self/environ",
    "/seeds/000_17b6bf656801d13b.txt",
    "/config/feedserver.yaml",
    "/wsgi.py",
    "/.git/config",
    "/topics/~root.rss",
]
# Werkzeug merges repeated slashes with a 308 to the merged path.
MERGED_SLASHES = [
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/topics//ai.rss",
    # werkzeug would route these to the feeds themselves: a second URL of each feed.
    "//feed.rss",
    "///topics/ai.rss",
    "//topics/ai.atom?limit=5",
]


def secrets_in(text: str, *paths: Path) -> list[str]:
    """What an error body must not show: stack traces, paths, file contents, settings."""
    bad = [
        "Traceback",
        'File "',
        "/work",
        "/root",
        "/home",
        "/tmp",
        "/etc/",
        "pytest-of",
        "site-packages",
        ".py",
        "root:x:",
        "seeds_dir",
        "create_app",
        "import ",
        "[core]",
        *(str(path) for path in paths),
    ]
    return [needle for needle in bad if needle in text]


def send(client: FlaskClient, method: str, target: str, **headers: str) -> TestResponse:
    """Send a request target exactly as written: PATH_INFO is its percent-decoded bytes as
    latin-1, the way a WSGI server passes it, with no normalisation by the test client."""
    path, _, query = target.partition("?")
    environ = {
        "PATH_INFO": unquote_to_bytes(path.encode("utf-8")).decode("latin-1"),
        "QUERY_STRING": query,
        "REQUEST_URI": target,
        "RAW_URI": target,
    }
    data = b"x=1" if method not in ("GET", "HEAD") else None
    return client.open("/", method=method, data=data, headers=headers, environ_overrides=environ)


def raw_get(client: FlaskClient, target: str, **headers: str) -> TestResponse:
    """GET a request target exactly as written (see `send`)."""
    return send(client, "GET", target, **headers)


def body_text(response: TestResponse) -> str:
    """The body, ungzipped, as text."""
    body: bytes = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return body.decode("utf-8", errors="replace")


def everything(response: TestResponse) -> str:
    """Headers and body as one text."""
    head = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return f"{head}\n\n{body_text(response)}"


# --- odd paths: 404, never a file, never a 500 ----------------------------------------------


@pytest.mark.parametrize("path", BAD_PATHS, ids=lambda path: path[:60])
def test_odd_paths_are_404_and_show_nothing(
    client: FlaskClient, seeds_dir: Path, path: str
) -> None:
    for method in ("GET", "HEAD"):
        for accept in ("*/*", "application/json"):
            response = send(client, method, path, Accept=accept)
            assert response.status_code == 404
            text = body_text(response)
            assert not secrets_in(text, seeds_dir, ROOT), text
            assert "Set-Cookie" not in response.headers
            assert response.headers["Cache-Control"] == "no-store"
            if method == "GET" and accept == "application/json":
                assert response.mimetype == "application/json"
                data = json.loads(text)
                assert data["status"] == 404 and data["message"]


@pytest.mark.parametrize("path", MERGED_SLASHES)
def test_repeated_slashes_are_404_not_a_redirect(
    client: FlaskClient, seeds_dir: Path, path: str
) -> None:
    """No redirect: werkzeug would build its Location from the request's Host."""
    response = raw_get(client, path)
    assert response.status_code == 404
    assert "Location" not in response.headers
    text = body_text(response)
    assert "Traceback" not in text and "root:x:" not in text and str(seeds_dir) not in text


def test_static_serves_its_own_file_only(client: FlaskClient) -> None:
    assert raw_get(client, "/static/style.css").status_code == 200
    for path in ("/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/.%2e/web.py"):
        response = raw_get(client, path)
        assert response.status_code == 404
        assert "import" not in body_text(response)


def test_a_404_reads_no_file_outside_the_static_folder(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The static route never opens a file for a path that leaves its folder: a bait file
    one level up would be served if it did."""
    static = tmp_path / "site" / "static"
    static.mkdir(parents=True)
    shutil.copy(ROOT / "feedserver" / "static" / "style.css", static / "style.css")
    (tmp_path / "site" / "bait.txt").write_text("root:x:0:0 bait")
    monkeypatch.setattr(client.application, "static_folder", str(static))
    assert raw_get(client, "/static/style.css").status_code == 200
    for path in ("/static/../bait.txt", "/static/..%2fbait.txt", "/static/%2e%2e/bait.txt"):
        response = raw_get(client, path)
        assert response.status_code == 404
        assert "bait" not in body_text(response)


# --- query parameters: 400 naming the parameter ---------------------------------------------

BAD_NUMBERS = [
    "-1",
    "0",
    "-0",
    "00",
    "99999999999999999999999",
    "1e3",
    "1.5",
    "abc",
    "",
    "%20",
    "%2B5",
    "0x10",
    "1,2",
    "%00",
    "%EF%BC%95",  # fullwidth 5
    "NaN",
    "%3Cb%3Ex%3C/b%3E",
]
BAD_PARAMETERS = (
    [("limit", value) for value in [*BAD_NUMBERS, "501", "1&limit=2", "5&limit=5"]]
    + [("page", value) for value in [*BAD_NUMBERS, "1000001", "1&page=2", "2&page=2"]]
    + [
        ("min_quality", value)
        for value in [
            "abc",
            "",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "1e999",
            "-1e999",
            "0x10",
            "1,5",
            "%00",
            "%3Cb%3Ex%3C/b%3E",
            "1&min_quality=2",
            "5&min_quality=5",
            "0",
            "-5",
            "1e308",
            "1000001",
            "1_0",
            "%EF%BC%91",  # fullwidth 1
        ]
    ]
    + [("sort", value) for value in ["random", "date&sort=heat", "DATE", "%00"]]
    + [("q", "x" * 201), ("q", "a&q=b")]
)


def wants_json(path: str, accept: str) -> bool:
    """Whether an error is JSON: asked for, or the path is a JSON resource."""
    return accept == "application/json" or path.partition("?")[0].endswith((".json", "/healthz"))


def error_message(response: TestResponse, status: int) -> str:
    """The message of an error response, checking its form: JSON, or one line of text."""
    text = body_text(response)
    if response.mimetype == "application/json":
        data = json.loads(text)
        assert data["status"] == status
        assert data["error"]
        message: str = data["message"]
        return message
    assert response.mimetype == "text/plain"
    assert text.startswith(f"{status} ") and text.count("\n") == 1
    return text


@pytest.mark.parametrize("name", ["limit", "page", "min_quality", "sort", "q"])
def test_bad_parameter_is_400_naming_it(client: FlaskClient, seeds_dir: Path, name: str) -> None:
    values = [value for parameter, value in BAD_PARAMETERS if parameter == name]
    assert values
    for value in values:
        for feed in FEEDS:
            for accept in ("text/plain", "*/*", "application/json"):
                response = raw_get(client, f"{feed}?{name}={value}", Accept=accept)
                where = f"{feed}?{name}={value} ({accept})"
                assert response.status_code == 400, where
                assert (response.mimetype == "application/json") == wants_json(feed, accept)
                message = error_message(response, 400)
                assert f"'{name}'" in message, where
                assert "<b>" not in message  # the value is not echoed
                assert not secrets_in(body_text(response), seeds_dir, ROOT)


GOOD_QUERIES = [
    "limit=1",
    "limit=500",
    "limit=%205%20",
    "page=1",
    "page=1&limit=1",
    "min_quality=1",
    "min_quality=0.5",
    "min_quality=1000000",
    "min_quality=89.5",
    "sort=",
    "sort=heat",
    "q=",
    "q=%00",
    "unknown=1&unknown=2",
]


def test_good_parameters_are_served(client: FlaskClient) -> None:
    """An empty q or sort is no filter; unknown parameters are ignored."""
    for query in GOOD_QUERIES:
        for feed in FEEDS:
            assert raw_get(client, f"{feed}?{query}").status_code == 200, f"{feed}?{query}"


@pytest.mark.parametrize("value", ["1_0", "%EF%BC%91"])
def test_min_quality_accepts_plain_decimal_numbers_only(client: FlaskClient, value: str) -> None:
    response = raw_get(client, f"/feed.rss?min_quality={value}")
    assert response.status_code == 400
    assert "'min_quality'" in body_text(response)


def test_a_page_past_the_last_is_404_saying_so(client: FlaskClient) -> None:
    response = raw_get(client, "/topics/ai.rss?page=99", Accept="application/json")
    assert response.status_code == 404
    assert "page 99 does not exist" in json.loads(body_text(response))["message"]


# --- a forged Host header ---------------------------------------------------------------------

HOST_ROUTES = [
    *ROUTES,
    "/feed.json?limit=1&page=2",
    "/topics/ai.rss?q=azure",
    "/topics/nope.rss",
    "/nope",
    "/feed.rss?limit=0",
]


@pytest.fixture
def host_app(make_app: Callable[..., Flask], seeds_dir: Path) -> Flask:
    """An app without base_url: its links follow each request's Host."""
    return make_app(seeds_dir)


@pytest.mark.parametrize("gzipped", [False, True], ids=["identity", "gzip"])
def test_without_base_url_a_forged_host_reaches_no_one_else(host_app: Flask, gzipped: bool) -> None:
    """Each response is made for its request's Host, and the cache keeps them apart."""
    client = host_app.test_client()
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    for path in HOST_ROUTES:
        before = raw_get(client, path, Host="good.example", **headers)
        forged = raw_get(client, path, Host="evil.example:8443", **headers)
        after = raw_get(client, path, Host="good.example", **headers)
        assert forged.status_code == before.status_code == after.status_code, path
        assert "evil.example" not in everything(after), path
        assert body_text(after) == body_text(before), path
        if path in FEEDS:  # the forger's own response is made for the forger's host
            assert "evil.example:8443" in body_text(forged)
            assert forged.headers["ETag"] != after.headers["ETag"]


def test_without_base_url_a_forged_etag_does_not_validate_another_hosts_copy(
    host_app: Flask,
) -> None:
    client = host_app.test_client()
    forged = raw_get(client, "/feed.rss", Host="evil.example")
    again = raw_get(
        client, "/feed.rss", Host="good.example", **{"If-None-Match": forged.headers["ETag"]}
    )
    assert again.status_code == 200
    assert "evil.example" not in body_text(again)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1", "[::1]"])
def test_with_base_url_a_forged_host_appears_in_no_response(client: FlaskClient, host: str) -> None:
    for path in [*HOST_ROUTES, *BAD_PATHS[:5]]:
        for method in ("GET", "HEAD", "POST"):
            for accept in ("*/*", "application/json"):
                headers = {"Host": host, "Accept": accept, "Accept-Encoding": "gzip"}
                response = send(client, method, path, **headers)
                assert response.status_code < 500
                assert host not in everything(response), (path, method, accept)


@pytest.mark.parametrize("path", MERGED_SLASHES)
def test_with_base_url_a_redirect_does_not_use_the_forged_host(
    client: FlaskClient, path: str
) -> None:
    response = raw_get(client, path, Host="evil.example")
    assert "evil.example" not in everything(response)


@pytest.mark.parametrize(
    "host", ["evil.example:99999", "a..b", "-evil", "evil.example.", "evil_example", "@evil", ""]
)
def test_without_base_url_a_malformed_host_is_400(host_app: Flask, host: str) -> None:
    response = raw_get(host_app.test_client(), "/feed.rss", Host=host)
    assert response.status_code == 400
    assert "evil" not in body_text(response)


# --- methods other than GET and HEAD ---------------------------------------------------------

METHOD_PATHS = [*ROUTES, "/feed.json?limit=1", "/nope", "/topics/nope.rss", BAD_PATHS[0]]


@pytest.mark.parametrize(
    "method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"]
)
def test_other_methods_are_405_allowing_get_and_head(
    client: FlaskClient, seeds_dir: Path, method: str
) -> None:
    for path in METHOD_PATHS:
        for accept in ("*/*", "application/json"):
            response = send(client, method, path, Accept=accept)
            assert response.status_code == 405, path
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allowed == {"GET", "HEAD"}
            text = body_text(response)
            assert not secrets_in(text, seeds_dir, ROOT)
            if accept == "application/json":
                assert response.mimetype == "application/json"
                assert json.loads(text)["message"]


def test_head_is_served_like_get_without_a_body(client: FlaskClient) -> None:
    for path in ROUTES:
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.data == b""
    assert client.head("/nope").status_code == 404


# --- error bodies -----------------------------------------------------------------------------

ERRORS = [
    ("GET", "/nope", 404),
    ("GET", "/topics/nope.rss", 404),
    ("GET", "/providers/nope", 404),
    ("GET", "/feed.rss?page=1000", 404),
    ("GET", "/feed.rss?limit=abc", 400),
    ("GET", "/topics/ai.json?sort=x", 400),
    ("POST", "/feed.rss", 405),
    ("DELETE", "/nope", 405),
]


@pytest.fixture
def canary_app(make_app: Callable[..., Flask], tmp_path: Path) -> Iterator[Flask]:
    """An app whose settings are all recognisable, to find any of them in an error body."""
    seeds = tmp_path / "canary-seeds-dir"
    shutil.copytree(ROOT / "seeds", seeds)
    yield make_app(
        seeds,
        base_url="https://canary-base.example",
        site_title="CanaryTitle",
        site_description="CanaryDescription",
        language="en-CANARY",
        feed_limit=37,
        max_feed_limit=4321,
    )


@pytest.mark.parametrize(("method", "path", "status"), ERRORS)
def test_error_bodies_are_short_and_show_no_setting(
    canary_app: Flask, method: str, path: str, status: int
) -> None:
    client = canary_app.test_client()
    for accept in ("*/*", "text/html", "application/json", "application/xml"):
        response = send(client, method, path, Accept=accept)
        assert response.status_code == status
        text = body_text(response)
        assert not secrets_in(text, Path(app_settings(canary_app).seeds_dir), ROOT)
        assert response.headers["Cache-Control"] == "no-store"
        if response.mimetype == "text/html":
            # A browser's error page is a page of the site: its title and links are public;
            # no other setting, no path and no trace shows.
            assert accept == "text/html" and "Traceback" not in text
            assert not re.search(r"canary-seeds|\b37\b|4321", text, re.IGNORECASE), text
            assert 'href="https://canary-base.example/"' in text
            continue
        assert len(text) < 400
        assert not re.search(r"canary|37\b", text, re.IGNORECASE), text
        assert (response.mimetype == "application/json") == wants_json(path, accept)
        assert error_message(response, status)


def test_an_unexpected_error_shows_nothing_of_it(
    canary_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(document: Any) -> bytes:
        raise RuntimeError(f"boom in {app_settings(canary_app).seeds_dir}")

    monkeypatch.setitem(RENDERERS, "atom", explode)  # the dict the routes render with
    for accept in ("*/*", "application/json"):
        response = canary_app.test_client().get("/feed.atom", headers={"Accept": accept})
        assert response.status_code == 500
        text = body_text(response)
        assert "boom" not in text and "RuntimeError" not in text
        assert not secrets_in(text, ROOT)


# --- the same against a real gunicorn, with raw request lines ---------------------------------


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    seeds = tmp_path_factory.mktemp("bad") / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    running = gunicorn_launcher(
        seeds, tmp_path_factory.mktemp("logs"), env={"FEEDSERVER_BASE_URL": TEST_BASE_URL}
    )
    yield running
    running.stop()


def send_raw(server: GunicornServer, request_line: bytes, host: bytes) -> tuple[int, bytes]:
    """Send one request exactly as given; returns the status and everything after it."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    return int(answer.split(b" ", 2)[1]), answer


def test_gunicorn_answers_odd_paths_without_a_500_or_a_file(server: GunicornServer) -> None:
    for path in BAD_PATHS:
        target = path.encode("utf-8")
        for method in (b"GET", b"HEAD", b"POST"):
            status, answer = send_raw(server, method + b" " + target + b" HTTP/1.1", b"h.test")
            expected = {405} if method == b"POST" else {404}
            if len(target) > 4094 or not target.isascii():
                expected |= {400, 414}  # gunicorn's own refusal: line too long, not ASCII
            assert status in expected, (method, path[:60], answer[:200])
            assert b"root:x:" not in answer and b"Traceback" not in answer
    assert "Traceback" not in server.output()


def test_gunicorn_redirect_ignores_a_forged_host(server: GunicornServer) -> None:
    status, answer = send_raw(server, b"GET /topics//ai.rss HTTP/1.1", b"evil.example")
    assert status < 500
    assert b"evil.example" not in answer

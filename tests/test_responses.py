"""The HTTP rules of a response: validators made from the bytes, Cache-Control, and what
every request must pass before anything answers it."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.exceptions import BadRequest, MethodNotAllowed
from werkzeug.test import EnvironBuilder

from feedserver.responses import Rendered, cache_control, request_base_url


def environ(method: str = "GET", base_url: str = "http://feeds.test") -> dict[str, Any]:
    made: dict[str, Any] = EnvironBuilder(
        path="/feed.rss", method=method, base_url=base_url
    ).get_environ()
    return made


def test_the_etag_is_made_from_the_bytes_alone() -> None:
    one = Rendered(b"body", "text/plain", None)
    same = Rendered(b"body", "application/json", None, (("X-Other", "1"),), max_age=5)
    assert one.etag == same.etag and len(one.etag) == 32
    assert Rendered(b"other body", "text/plain", None).etag != one.etag
    assert one.etag_for(True) == f"{one.etag}-gz"
    with pytest.raises(TypeError):
        Rendered(b"body", "text/plain", None, etag="chosen")  # type: ignore[call-arg]


def test_a_feed_kept_longer_than_the_server_pace_still_revalidates_shared_caches() -> None:
    assert cache_control(120) == "public, max-age=120"
    assert cache_control(120, 60) == "public, max-age=120"
    assert cache_control(120, 3600) == "public, max-age=3600, s-maxage=120"


def test_get_and_head_are_admitted_with_the_site_base() -> None:
    assert request_base_url(environ("GET"), "") == "http://feeds.test"
    assert (
        request_base_url(environ("HEAD", "https://feeds.test:8443"), "")
        == "https://feeds.test:8443"
    )
    assert (
        request_base_url(environ("GET"), "https://example.org/news") == "https://example.org/news"
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_refused_with_what_is_allowed(method: str) -> None:
    with pytest.raises(MethodNotAllowed) as refused:
        request_base_url(environ(method), "https://example.org")
    assert list(refused.value.valid_methods or ()) == ["GET", "HEAD"]


@pytest.mark.parametrize("host", ["bad<host>", "a b", "host/path", "-dash.test", "x:99999999"])
def test_a_host_that_cannot_make_links_is_refused_unless_base_url_is_set(host: str) -> None:
    request = environ()
    request["HTTP_HOST"] = host
    with pytest.raises(BadRequest, match="bad Host header"):
        request_base_url(request, "")
    assert request_base_url(request, "https://example.org") == "https://example.org"

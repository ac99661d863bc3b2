"""Paths with repeated slashes (`//feed.rss`, `/topics//ai.rss`) answered with a 301 to the
same path with single slashes, before anything counts, limits or caches them: each feed has
one URL, so it has one cache entry, one polling limit and one line in the figures. The
target is `base_url` plus the path, or the bare path: never anything from the Host header."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from .redirects import QUERY_SAFE
from .responses import ALLOWED_METHODS, CONTENT_TYPES, NOSNIFF, WSGIApp, cache_control
from .urls import Urls

_REPEATED = re.compile("//+")
# What a path keeps as it is in the Location header; the rest is percent-encoded.
_PATH_SAFE = "/+@:!$&'()*,;=~-._"
# The same path always moves to the same place: a day.
MOVED_MAX_AGE = 86400


def single_slashed(path: str) -> str:
    """The path with every run of slashes made one."""
    return _REPEATED.sub("/", path)


class SingleSlashes:
    """WSGI middleware: a 301 for a GET or HEAD of a path with repeated slashes."""

    def __init__(self, app: WSGIApp, base_url: str) -> None:
        self.app = app
        self.urls = Urls(base_url)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if "//" not in path or environ.get("REQUEST_METHOD") not in ALLOWED_METHODS:
            return self.app(environ, start_response)
        # PATH_INFO carries the request's bytes as latin-1 (PEP 3333).
        target = quote(single_slashed(path).encode("latin-1"), safe=_PATH_SAFE)
        query = quote(environ.get("QUERY_STRING", "").encode("latin-1"), safe=QUERY_SAFE)
        location = self.urls.path(target, query)
        body = f"Moved to {location}\n".encode()
        start_response(
            "301 Moved Permanently",
            [
                ("Location", location),
                ("Content-Type", CONTENT_TYPES["text"]),
                ("Content-Length", str(len(body))),
                ("Cache-Control", cache_control(MOVED_MAX_AGE)),
                NOSNIFF,
            ],
        )
        return [body] if environ.get("REQUEST_METHOD") == "GET" else []

"""Asking the app for a route's bytes in-process, as a client would but with no socket: its
whole WSGI stack called with a plain GET's environ, like Flask's test client, whose own
building of each request costs a static export a fifth of its time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from flask import Flask
from flask.testing import EnvironBuilder

from .responses import site_base


class RouteFailed(Exception):
    """A route did not answer 200; the message says what it answered."""


class SelfRequests:
    """GETs to one app: an environ built once per set of headers, then only its path set."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        # Flask's own WSGI callable, below the middleware: the export's requests are no
        # polls to count or to slow down, and a response the middleware would answer from
        # the render cache is the one Flask's views answer from it.
        self._wsgi = partial(Flask.wsgi_app, app)
        self._bases: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    def _environ(self, path: str, headers: Mapping[str, str]) -> dict[str, Any]:
        if not path.isascii() or "%" in path or "?" in path:
            # What needs quoting or decoding is left to werkzeug, as the test client does.
            return dict(EnvironBuilder(self.app, path=path, headers=dict(headers)).get_environ())
        key = tuple(sorted(headers.items()))
        base = self._bases.get(key)
        if base is None:
            base = EnvironBuilder(self.app, path="/", headers=dict(headers)).get_environ()
            self._bases[key] = base
        environ = dict(base)
        environ["PATH_INFO"] = path
        return environ

    def base_url(self, configured: str) -> str:
        """The site's base URL in the responses: configured, or the requests' own host."""
        return site_base(self._environ("/", {}), configured)

    def get(self, path: str, headers: Mapping[str, str]) -> bytes:
        """The body the app answers a GET of path with; RouteFailed unless it is a 200."""
        statuses: list[str] = []

        def start_response(status: str, _headers: Any, _exc_info: Any = None) -> Callable[..., Any]:
            statuses.append(status)
            return lambda data: None  # no route writes through it

        answer = self._wsgi(self._environ(path, headers), start_response)
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        if not statuses or not statuses[-1].startswith("200 "):
            code = statuses[-1].split(" ", 1)[0] if statuses else "nothing"
            raise RouteFailed(f"answered {code}")
        return body

"""The hot path: a cached response answered straight from WSGI, before Flask builds a
request. Feed readers poll the same few URLs over and over; between reloads each answer
is already rendered, compressed and has its headers made, so nothing is left to do but
check the validators and write the bytes. Anything not cached goes on to the Flask app,
and so does anything refused (responses.request_base_url): Flask answers it with its error page."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException

from .cache import RenderCache
from .responses import STATUS_LINES, WSGIApp, answer, cache_key, request_base_url
from .store import CatalogStore


class CachedResponses:
    """WSGI middleware that answers GET and HEAD from the render cache when it can."""

    def __init__(
        self,
        app: WSGIApp,
        store: CatalogStore,
        cache: RenderCache,
        base_url: str,
        max_age: int,
    ) -> None:
        self.app = app
        self.store = store
        self.cache = cache
        self.base_url = base_url
        self.max_age = max_age

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        # gunicorn takes SCRIPT_NAME from a trusted proxy's header; links are made from
        # base_url or the host alone, so it is ignored everywhere, and never reaches a page
        # that would be cached for everyone (Flask's url_for would prefix it).
        if environ.get("SCRIPT_NAME"):
            environ["SCRIPT_NAME"] = ""
        try:
            base = request_base_url(environ, self.base_url)
        except HTTPException:
            return self.app(environ, start_response)
        rendered = self.cache.peek(self.store.catalog, cache_key(environ, base))
        if rendered is None:
            return self.app(environ, start_response)
        environ["feedserver.cache"] = "hit"
        status, headers, body = answer(rendered, environ, self.max_age)
        start_response(STATUS_LINES[status], headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" or status == 304 else [body]

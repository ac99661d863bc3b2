"""The hot path: a cached response answered straight from WSGI, before Flask builds a
request. Feed readers poll the same few URLs over and over; between reloads each answer
is already rendered, compressed and has its headers made, so nothing is left to do but
check the validators and write the bytes. Anything not cached goes on to the Flask app."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from werkzeug.http import is_resource_modified, parse_accept_header
from werkzeug.sansio.utils import get_host

from .cache import Headers, RenderCache, Rendered
from .negotiation import variant
from .store import CatalogStore

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
STATUS_LINES = {200: "200 OK", 304: "304 Not Modified"}
# What a 304 keeps of the 200's headers (RFC 9110 15.4.5): no body, so no body headers.
_BODY_HEADERS = frozenset({"Content-Type", "Content-Length", "Content-Encoding"})


def site_base(environ: dict[str, Any], configured: str) -> str:
    """The absolute URL the site is served at: configured, or the request's own host."""
    if configured:
        return configured
    host = get_host(
        environ["wsgi.url_scheme"],
        environ.get("HTTP_HOST"),
        (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0)),
    )
    return f"{environ['wsgi.url_scheme']}://{host}"


def cache_key(environ: dict[str, Any], base: str) -> Hashable:
    """What identifies a response: the site's base URL (a response made for one Host is
    never served to another), the path and the query exactly as sent, and the variant (a
    feed's HTML preview for browsers is kept apart from the feed)."""
    return (base, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), variant(environ))


def answer(rendered: Rendered, environ: dict[str, Any], max_age: int) -> tuple[int, Headers, bytes]:
    """Status, headers and body for a rendered response, honouring gzip and validators;
    `max_age` is the server's Cache-Control max-age (see Rendered.headers)."""
    # Cheap tests first: most polls carry no validators, many no Accept-Encoding.
    accept = environ.get("HTTP_ACCEPT_ENCODING")
    compress = bool(accept) and parse_accept_header(accept)["gzip"] > 0
    headers = rendered.headers(compress, max_age)
    conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ
    if conditional and not is_resource_modified(
        environ, etag=rendered.etag_for(compress), last_modified=rendered.last_modified
    ):
        return 304, [h for h in headers if h[0] not in _BODY_HEADERS], b""
    return 200, headers, rendered.gzipped if compress else rendered.body


class CachedResponses:
    """WSGI middleware that answers GET and HEAD from the render cache when it can."""

    def __init__(
        self,
        app: WSGIApp,
        store: CatalogStore,
        cache: RenderCache,
        base_url: str,
        max_age: int,
        valid_host: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.store = store
        self.cache = cache
        self.base_url = base_url
        self.max_age = max_age
        self.valid_host = valid_host

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            base = site_base(environ, self.base_url)
            if self.base_url or self.valid_host(base.partition("://")[2]):
                rendered = self.cache.peek(self.store.catalog, cache_key(environ, base))
                if rendered is not None:
                    environ["feedserver.cache"] = "hit"
                    status, headers, body = answer(rendered, environ, self.max_age)
                    start_response(STATUS_LINES[status], headers)
                    return [] if method == "HEAD" or status == 304 else [body]
        return self.app(environ, start_response)

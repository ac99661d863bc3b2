"""The HTTP rules of every response, in one place: a rendered body with its validators, gzip
copy and headers; the content types and the headers every answer carries (nosniff, the page
policy, CORS, Cache-Control); the conditional answer; which requests are refused before
anything else; and the key a response is cached under. The Flask routes (web.py) and the
cached-response middleware (cached_responses.py) both stand on it."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from werkzeug.exceptions import BadRequest, MethodNotAllowed
from werkzeug.http import http_date, is_resource_modified, quote_etag
from werkzeug.sansio.utils import get_host
from werkzeug.wrappers import Response

from .accept import coding_quality
from .negotiation import variant
from .query import encode_query, known_parameters

# Level 6 is gzip's default: nearly the size of 9 at a fraction of the time.
GZIP_LEVEL = 6

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json",
    "html": "text/html; charset=utf-8",
    "api": "application/json",
    "opml": "text/x-opml; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}

Header = tuple[str, str]
Headers = list[Header]
# A WSGI application, as the middlewares wrap one.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Browsers take every answer for the type it says it is, never for what it looks like.
NOSNIFF: Header = ("X-Content-Type-Options", "nosniff")
# Pages need no script or frame; their only style sheet and icon are our own, images come
# from the articles' sites, and the one form (search) submits to this site.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: http:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CSP: Header = ("Content-Security-Policy", PAGE_POLICY)
# Public data: any web page may read a feed, whichever variant its request gets.
CORS: Header = ("Access-Control-Allow-Origin", "*")
# Errors, /healthz and the figures change from one request to the next.
NO_STORE = "no-store"

STATUS_LINES = {200: "200 OK", 304: "304 Not Modified"}
# What a 304 keeps of the 200's headers (RFC 9110 15.4.5): no body, so no body headers.
_BODY_HEADERS = frozenset({"Content-Type", "Content-Length", "Content-Encoding"})
ALLOWED_METHODS = ("GET", "HEAD")
# A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)


def cache_control(server_max_age: int, max_age: int | None = None) -> str:
    """A public response's Cache-Control. `server_max_age` is the server's own pace
    (reload_interval); a feed that publishes less often (`max_age`, its polling interval)
    lets readers keep it longer, while shared caches (s-maxage) still revalidate at the
    server's pace."""
    if max_age is None or max_age <= server_max_age:
        return f"public, max-age={server_max_age}"
    return f"public, max-age={max_age}, s-maxage={server_max_age}"


def add_nosniff(response: Response) -> Response:
    """Rendered responses carry nosniff already; errors and static files get it here."""
    response.headers.setdefault(*NOSNIFF)
    return response


@dataclass(slots=True)
class Rendered:
    """A response body with its validators and headers, each made once, on first demand:
    a cached feed is served without formatting a date or compressing anything again."""

    body: bytes
    content_type: str
    last_modified: datetime | None
    extra_headers: tuple[Header, ...] = ()
    # Seconds a reader may keep it (a feed's own polling interval); None: the server's.
    max_age: int | None = None
    # The request headers the body was chosen on (a feed URL's variants add Accept).
    vary: str = "Accept-Encoding"
    # Strong validator from the bytes alone: equal in every worker and after restarts.
    etag: str = field(init=False)
    _gzipped: bytes | None = field(default=None, repr=False)
    _headers: dict[tuple[bool, int], Headers] = field(default_factory=dict, repr=False)
    # Told when the gzip copy is made, so the cache holding this response can count it.
    on_grow: Callable[[Rendered], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.etag = hashlib.blake2b(self.body, digest_size=16).hexdigest()

    @property
    def gzipped(self) -> bytes:
        """The body gzip-compressed with a fixed mtime, so its bytes are stable too."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
            if self.on_grow is not None:
                self.on_grow(self)
        return self._gzipped

    @property
    def held_bytes(self) -> int:
        """The bytes of its bodies: the plain one, and the gzip copy once made."""
        gzipped = self._gzipped
        return len(self.body) + (len(gzipped) if gzipped is not None else 0)

    def etag_for(self, compressed: bool) -> str:
        """The strong ETag of the plain or the gzip representation (they must differ)."""
        return f"{self.etag}-gz" if compressed else self.etag

    def headers(self, compressed: bool, max_age: int) -> Headers:
        """The response headers of the plain or gzip representation; `max_age` is the
        server's own (reload_interval; see cache_control)."""
        key = (compressed, max_age)
        found = self._headers.get(key)
        if found is None:
            body = self.gzipped if compressed else self.body
            found = [("Content-Type", self.content_type), ("Content-Length", str(len(body)))]
            if compressed:
                found.append(("Content-Encoding", "gzip"))
            found += [
                ("Vary", self.vary),
                ("ETag", quote_etag(self.etag_for(compressed))),
                ("Cache-Control", cache_control(max_age, self.max_age)),
                NOSNIFF,
            ]
            if self.last_modified is not None:
                found.append(("Last-Modified", http_date(self.last_modified)))
            found += self.extra_headers
            self._headers[key] = found
        return found


def answer(rendered: Rendered, environ: dict[str, Any], max_age: int) -> tuple[int, Headers, bytes]:
    """Status, headers and body for a rendered response, honouring gzip and validators;
    `max_age` is the server's Cache-Control max-age (see Rendered.headers)."""
    # Cheap tests first: most polls carry no validators, many no Accept-Encoding.
    accept: str = environ.get("HTTP_ACCEPT_ENCODING", "")
    compress = bool(accept) and coding_quality(accept, "gzip") > 0  # bounded, as Accept is
    headers = rendered.headers(compress, max_age)
    conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ
    if conditional and not is_resource_modified(
        environ, etag=rendered.etag_for(compress), last_modified=rendered.last_modified
    ):
        return 304, [h for h in headers if h[0] not in _BODY_HEADERS], b""
    return 200, headers, rendered.gzipped if compress else rendered.body


def valid_host(host: str) -> bool:
    """Whether a Host header is a host name or address, fit to make links with."""
    return _HOST.fullmatch(host) is not None


def _request_host(environ: dict[str, Any]) -> str:
    """The request's host (and port unless the scheme's default), as Flask's request.host."""
    return get_host(
        environ["wsgi.url_scheme"],
        environ.get("HTTP_HOST"),
        (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0)),
    )


def site_base(environ: dict[str, Any], configured: str) -> str:
    """The absolute URL the site is served at: configured, or the request's own host."""
    if configured:
        return configured
    return f"{environ['wsgi.url_scheme']}://{_request_host(environ)}"


def request_base_url(environ: dict[str, Any], configured: str) -> str:
    """The site's base URL for a request (see site_base), once it passes what every request
    meets first: only GET and HEAD exist here, and a Host header that is not a host name
    cannot make links (unless base_url is configured). Raises the 405 or the 400 that
    refuses it."""
    if environ.get("REQUEST_METHOD") not in ALLOWED_METHODS:
        raise MethodNotAllowed(valid_methods=ALLOWED_METHODS)
    if configured:
        return configured
    host = _request_host(environ)
    if not valid_host(host):
        raise BadRequest("bad Host header")
    return f"{environ['wsgi.url_scheme']}://{host}"


def canonical_query(environ: dict[str, Any]) -> str:
    """The canonical query of a request: the known parameters it sent (query.py), in a fixed
    order, and nothing else. Feeds and pages are made from this query alone (their self and
    paging links too), so every request that maps to one cache key gets the right response."""
    query = environ.get("QUERY_STRING", "")
    if not query:
        return ""
    if len(query) <= _MEMO_CHARS:
        return _canonical_memo(query)
    return _canonical(query)


def _canonical(query: str) -> str:
    return encode_query(known_parameters(query))


# Parsing and encoding a query takes about 20 µs, several times a cached answer; readers
# poll the same few queries, so the latest 4,096 short ones are remembered (3 MB at most).
_MEMO_CHARS = 256
_canonical_memo = lru_cache(maxsize=4096)(_canonical)


def cache_key(environ: dict[str, Any], base: str) -> Hashable:
    """What identifies a response: the site's base URL (a response made for one Host is
    never served to another), the path, the canonical query (unknown parameters make no new
    key) and the variant (a feed's HTML preview for browsers is kept apart from the feed).
    SCRIPT_NAME plays no part: the cached-response middleware clears it."""
    path = environ.get("PATH_INFO", "")
    return (base, path, canonical_query(environ), variant(environ))

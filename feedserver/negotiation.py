"""Which variant of a URL a request gets: a feed URL answers a browser's navigation with an
HTML preview of the feed and every other client with the feed itself. One rule, used by
the routes, the fast path and the cache key alike, so they can never disagree."""

from __future__ import annotations

import re
from typing import Any

from . import accept
from .urls import ALL_FEEDS, FEED_EXTENSIONS, KIND_PATHS, OPML, index_path, listing_path

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/xml",
    "text/xml",
    "application/json",
)
# Both variants of a feed URL name every header the choice is made on.
FEED_VARY = "Accept-Encoding, Accept, Sec-Fetch-Dest"
PREVIEW = "preview"
_NAVIGATION = "feedserver.navigation"  # the request's decision, in its environ
# The feed URLs and the public data of the layout (urls.py), as patterns.
_COLLECTIONS = "|".join(
    [re.escape(ALL_FEEDS), *(f"{re.escape(index_path(kind))}/[^/]+" for kind in KIND_PATHS)]
)
_FEED_PATH = re.compile(f"(?:{_COLLECTIONS})\\.(?:{'|'.join(FEED_EXTENSIONS)})")
_PUBLIC_DATA = re.compile(
    "|".join(
        [
            _FEED_PATH.pattern,
            *(re.escape(listing_path(kind)) for kind in KIND_PATHS),
            re.escape(OPML),
        ]
    )
)


def is_feed_path(path: str) -> bool:
    """Whether a path names a feed (in any format) of everything, a topic or a provider."""
    return _FEED_PATH.fullmatch(path) is not None


def is_public_data(path: str) -> bool:
    """Whether a path is a feed, a JSON listing or the OPML: data any web page may fetch."""
    return _PUBLIC_DATA.fullmatch(path) is not None


def is_navigation(environ: dict[str, Any]) -> bool:
    """Whether a request is a browser opening a page: `Sec-Fetch-Dest: document`, or an
    Accept that prefers text/html over every feed type. Decided once per request (the
    answer is kept in its environ), from the bounded Accept of accept.py."""
    decided = environ.get(_NAVIGATION)
    if decided is None:
        decided = environ[_NAVIGATION] = _decide_navigation(environ)
    return bool(decided)


def _decide_navigation(environ: dict[str, Any]) -> bool:
    if environ.get("HTTP_SEC_FETCH_DEST") == "document":
        return True
    header = environ.get("HTTP_ACCEPT")
    # Cheap test first: feed readers seldom name text/html at all.
    if not isinstance(header, str) or "text/html" not in header:
        return False
    summary = accept.summary_of(environ)
    html = accept.quality(summary, "text/html")
    return html > 0 and all(html > accept.quality(summary, other) for other in FEED_TYPES)


def variant(environ: dict[str, Any]) -> str:
    """The variant of the requested URL: PREVIEW for a browser opening a feed, else ""."""
    if is_navigation(environ) and is_feed_path(environ.get("PATH_INFO", "")):
        return PREVIEW
    return ""

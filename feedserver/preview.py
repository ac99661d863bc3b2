"""HTML responses: the page policy every page is sent with, and the preview a browser gets
when a person opens a feed URL (readers get the feed itself; see negotiation.py)."""

from __future__ import annotations

from typing import Any

from flask import render_template

from .cache import Rendered
from .config import current_settings
from .negotiation import FEED_VARY
from .query import Page
from .render import FeedDocument

HTML_TYPE = "text/html; charset=utf-8"
# Pages need no script or frame; their only style sheet and icon are our own, images come
# from the articles' sites, and the one form (search) submits to this site.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: http:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
FORMAT_NAMES = {"rss": "RSS feed", "atom": "Atom feed", "json": "JSON Feed"}
# Public data: any web page may read a feed, whichever variant its request gets.
CORS = ("Access-Control-Allow-Origin", "*")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 article`, `2 articles`, `1,024 articles`."""
    word = noun if count == 1 else (nouns or f"{noun}s")
    return f"{count:,} {word}"


def html(template: str, **context: Any) -> Rendered:
    """A page rendered from a template, with the strict page policy."""
    body = render_template(template, site_title=current_settings().site_title, **context)
    return Rendered(
        body.encode("utf-8"), HTML_TYPE, None, (("Content-Security-Policy", PAGE_POLICY),)
    )


def feed_preview(
    document: FeedDocument,
    extension: str,
    page: Page,
    formats: dict[str, str],
    last_modified: Any,
) -> Rendered:
    """The HTML page a browser gets at a feed's URL: what a feed is, the URL to copy into a
    reader, and the page of entries the feed itself holds."""
    body = render_template(
        "preview.html",
        site_title=current_settings().site_title,
        document=document,
        format_name=FORMAT_NAMES[extension],
        formats=formats,
        page=page,
        entries=document.entries,
    )
    return Rendered(
        body.encode("utf-8"),
        HTML_TYPE,
        last_modified,
        (("Content-Security-Policy", PAGE_POLICY), CORS),
        vary=FEED_VARY,
    )

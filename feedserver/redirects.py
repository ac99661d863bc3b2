"""The URLs people and readers type, answered with a 301 to the canonical URL: the feed
names other sites use (`/rss.xml`, `/atom.xml`, `/feed/`, ...), a trailing slash, and a
topic or provider spelled another way. Targets come from `base_url` or are relative paths,
never from the request's Host header."""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, request

from .catalog import PROVIDER, TOPIC, Catalog
from .combine import MAX_UNION, UNION_SEPARATOR
from .config import current_settings
from .keys import provider_for, topic_for
from .negotiation import is_public_data
from .responses import CONTENT_TYPES, CORS, cache_control
from .urls import KIND_PATHS, PATHS, Urls, collection_path, collection_rule, index_path

bp = Blueprint("redirects", __name__)

# Feed names of other feed software, each to the canonical feed of everything.
_RSS, _ATOM = PATHS.everything("rss"), PATHS.everything("atom")
FEED_ALIASES = {
    "/feed": _RSS,
    "/feed/": _RSS,
    "/rss": _RSS,
    "/rss/": _RSS,
    "/rss.xml": _RSS,
    "/feed.xml": _RSS,
    "/index.xml": _RSS,
    "/atom": _ATOM,
    "/atom.xml": _ATOM,
}
# A fixed alias never changes: a day; a spelling's target may go when its topic does.
ALIAS_MAX_AGE = 86400
# Characters a query string keeps as they are in the Location header; anything else,
# commas, semicolons and quotes included (as in every URL put in a header), is encoded.
_QUERY_SAFE = "/?&=+%:@$!*()~"


def _moved(path: str, max_age: int) -> Response:
    """A 301 to a path of this site, keeping the request's query string."""
    site = Urls(current_settings().base_url)
    location = site.path(path, quote(request.query_string, safe=_QUERY_SAFE))
    response = Response(f"Moved to {location}\n", 301, content_type=CONTENT_TYPES["text"])
    response.headers["Location"] = location
    response.headers["Cache-Control"] = cache_control(max_age)
    if is_public_data(path):
        response.headers.set(*CORS)  # a page's fetch() follows it to the feed
    return response


def canonical_key(catalog: Catalog, kind: str, key: str) -> str | None:
    """The key of the served topic or provider that `key` spells another way, if any; for a
    union (`Azure+AI`), its parts' keys in sorted order, once each, when every part names
    one: a union has one URL, whatever order a client lists its parts in."""
    if not key.isprintable():
        return None  # control characters are no way of spelling a name
    if UNION_SEPARATOR in key:
        parts = key.split(UNION_SEPARATOR)
        if len(parts) > MAX_UNION:
            return None
        keys = [
            p if catalog.collection(kind, p) else canonical_key(catalog, kind, p) for p in parts
        ]
        if not all(keys):
            return None
        joined = UNION_SEPARATOR.join(sorted({k for k in keys if k}))
        return joined if joined != key else None
    if kind == TOPIC:
        topic = topic_for(key)
        found = topic.key if topic else None
    elif kind == PROVIDER:
        provider = provider_for("", key)
        found = provider.key if provider else None
    else:
        return None
    if found and found != key and catalog.collection(kind, found) is not None:
        return found
    return None


def to_canonical(catalog: Catalog, kind: str, key: str, suffix: str) -> None:
    """Answer with a 301 when `key` is another spelling of a served collection's key, or a
    union whose parts are not in their canonical order."""
    if UNION_SEPARATOR not in key and catalog.collection(kind, key) is not None:
        return  # the common case, answered without working out a slug
    found = canonical_key(catalog, kind, key)
    if found is not None:
        max_age = current_settings().reload_interval
        abort(_moved(f"{collection_path(kind, found)}{suffix}", max_age))


def _alias(path: str) -> NoReturn:
    abort(_moved(path, ALIAS_MAX_AGE))


def _register() -> None:
    for number, (alias, target) in enumerate(FEED_ALIASES.items()):
        bp.add_url_rule(alias, f"feed_alias_{number}", lambda target=target: _alias(target))
    for kind, folder in KIND_PATHS.items():
        index = index_path(kind)
        bp.add_url_rule(f"{index}/", f"{folder}_index", lambda index=index: _alias(index))
        bp.add_url_rule(
            f"{collection_rule(kind)}/",
            f"{folder}_page",
            lambda key, kind=kind: _trailing_slash(kind, key),
        )


def _trailing_slash(kind: str, key: str) -> NoReturn:
    catalog: Catalog = current_app.extensions["feedserver.store"].catalog
    found = key if catalog.collection(kind, key) is not None else canonical_key(catalog, kind, key)
    if found is None:
        abort(404, description=f"no such {kind}: it has no published articles")
    _alias(collection_path(kind, found))


_register()

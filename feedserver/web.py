"""Routes: feeds, pages and JSON. Thin: it asks the catalog and the renderer, then answers
with the HTTP manners feed readers expect (validators, conditional GET, gzip)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, request

from . import combine, fragments, health, opml, redirects
from .cache import RenderCache
from .catalog import ALL, PROVIDER, TOPIC, Catalog, Collection
from .config import current_settings
from .freshness import Freshness, poll_interval
from .jsontext import json_bytes, utc_time
from .negotiation import FEED_VARY, PREVIEW, variant
from .networks import peer_in
from .preview import feed_preview
from .query import (
    BadParameter,
    FeedQuery,
    Page,
    QueryPairs,
    Selection,
    canonical_pairs,
    known_parameters,
    parameter_lists,
    parse_feed_query,
    parse_selection,
    select_page,
)
from .render import RENDERERS, FeedDocument
from .responses import (
    CONTENT_TYPES,
    CORS,
    NO_STORE,
    Header,
    Rendered,
    answer,
    cache_key,
    canonical_query,
    request_base_url,
    site_base,
)
from .store import CatalogStore
from .urls import ALL_FEEDS, FEED_EXTENSIONS, HEALTH, OPML, Urls, collection_rule, listing_path

logger = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)

FORMATS = f"any({', '.join(FEED_EXTENSIONS)})"
# The bundled feed image (a 144-pixel square PNG among the static files), used when the
# feed_image setting is empty.
DEFAULT_FEED_IMAGE = "feed-icon.png"
DEFAULT_FEED_IMAGE_SIZE = 144
# A topic page links to the feeds of at most this many of its providers.
MAX_PROVIDER_SUBSETS = 10


def _store() -> CatalogStore:
    store: CatalogStore = current_app.extensions["feedserver.store"]
    return store


def _cache() -> RenderCache:
    cache: RenderCache = current_app.extensions["feedserver.cache"]
    return cache


@bp.before_app_request
def refuse_odd_requests() -> None:
    """Refuse what no route answers (responses.request_base_url) before any route runs."""
    request_base_url(request.environ, current_settings().base_url)


def base_url() -> str:
    """The absolute URL the site is served at: configured, or the request's own host."""
    return site_base(request.environ, current_settings().base_url)


def site_urls() -> Urls:
    """The site's URLs, at base_url()."""
    return Urls(base_url())


# What a URL may carry unencoded in an HTTP header: RFC 3986's unreserved and reserved
# characters, less the comma, semicolon and quote that separate parts of a Link header.
_HEADER_SAFE = "/:?#[]@!$&()*+=%~"


def header_url(url: str) -> str:
    """A URL fit for an HTTP header: spaces, quotes, <>, commas and non-ASCII percent-encoded
    (existing escapes kept)."""
    return quote(url, safe=_HEADER_SAFE)


def _selection_words(catalog: Catalog, selection: Selection) -> str:
    """A selection in words: `about AI or Azure, from TechCrunch, not about Azure`."""

    def names(keys: frozenset[str], index: dict[str, Collection]) -> str:
        return " or ".join(index[k].name if k in index else k for k in sorted(keys))

    parts = [
        f"{prefix} {names(keys, index)}"
        for prefix, keys, index in (
            ("about", selection.topics, catalog.topics),
            ("from", selection.providers, catalog.providers),
            ("not about", selection.exclude_topics, catalog.topics),
            ("not from", selection.exclude_providers, catalog.providers),
        )
        if keys
    ]
    return ", ".join(parts)


def _feed_title(collection: Collection, narrowed_by: str = "") -> str:
    site = current_settings().site_title
    if collection.kind == ALL:
        return f"{site}: {narrowed_by}" if narrowed_by else site
    name = f"{collection.name}, {narrowed_by}" if narrowed_by else collection.name
    return f"{name} — {site}"


def _feed_description(collection: Collection, narrowed_by: str = "") -> str:
    also = f", {narrowed_by}" if narrowed_by else ""
    if collection.kind == TOPIC:
        return f"The newest articles about {collection.name}{also}"
    if collection.kind == PROVIDER:
        return f"The newest articles from {collection.name}{also}"
    if narrowed_by:
        return f"The newest articles {narrowed_by}"
    return current_settings().site_description


def request_query() -> QueryPairs:
    """The request's known parameters in canonical order: the only query a feed or page is
    made of (the same as in its cache key)."""
    return known_parameters(canonical_query(request.environ))


def _paging_links(collection: Collection, extension: str, page: Page) -> dict[str, str]:
    """RFC 5005 links, each keeping the request's other feed parameters."""
    others = tuple(pair for pair in request_query() if pair[0] != "page")
    urls = site_urls()

    def to(number: int) -> str:
        return urls.feed(collection, extension, canonical_pairs((*others, ("page", str(number)))))

    links = {"first": to(1), "last": to(page.last)}
    if page.number > 1:
        links["previous"] = to(min(page.number - 1, page.last))
    if page.number < page.last:
        links["next"] = to(page.number + 1)
    return links


def _hub_link() -> dict[str, str]:
    hub = current_settings().websub_hub
    return {"hub": hub} if hub else {}


def _feed_image() -> tuple[str, int]:
    """The feeds' icon and logo, and its size when known (0 when not)."""
    configured = current_settings().feed_image
    if configured:
        return configured, 0
    return site_urls().static(DEFAULT_FEED_IMAGE), DEFAULT_FEED_IMAGE_SIZE


def feed_freshness(collection: Collection) -> Freshness:
    """How often readers should poll a collection's feed: as often as it publishes, within
    reload_interval … a day."""
    return Freshness(poll_interval(collection.articles, current_settings().reload_interval))


def _render_feed(
    catalog: Catalog,
    collection: Collection,
    extension: str,
    query: FeedQuery,
    selection: Selection,
    narrowed_by: str = "",
    preview: bool = False,
) -> Rendered:
    # A narrowed or combined feed is no collection of the catalog: q, min_quality and sort
    # then test each article it kept (its selection itself came from the bit sets).
    key = (collection.kind, collection.key)
    page = select_page(collection.articles, query, catalog.search, key)
    if page.number > page.last:
        abort(404, description=f"page {page.number} does not exist; the last page is {page.last}")
    image_url, image_size = _feed_image()
    freshness = feed_freshness(collection)
    urls = site_urls()
    document = FeedDocument(
        title=_feed_title(collection, narrowed_by),
        description=_feed_description(collection, narrowed_by),
        html_url=urls.page(collection),
        self_url=urls.feed(collection, extension, request_query()),
        # A narrowed feed is a feed of its own: its identity keeps the selection.
        feed_id=urls.feed(collection, extension, selection.canonical_query()),
        language=current_settings().language,
        updated=collection.updated,
        entries=page.articles,
        urls=urls,
        freshness=freshness,
        publisher=current_settings().site_title,
        links=_paging_links(collection, extension, page) | _hub_link(),
        image_url=image_url,
        image_size=image_size,
        names=catalog.names,
        memo=fragments.current(),
    )
    if preview:
        formats = _feed_links(collection)
        return feed_preview(document, extension, page, formats, collection.last_modified)
    body = RENDERERS[extension](document)
    links: tuple[Header, ...] = (CORS,)
    hub = document.links.get("hub")
    if hub:
        # WebSub discovery by HTTP header too, for subscribers that do not parse the feed.
        hub_url, self_url = header_url(hub), header_url(document.self_url)
        links += (("Link", f'<{hub_url}>; rel="hub", <{self_url}>; rel="self"'),)
    return Rendered(
        body,
        CONTENT_TYPES[extension],
        collection.last_modified,
        links,
        max_age=freshness.seconds,
        vary=FEED_VARY,
    )


def _cached(render: Callable[[Catalog], Rendered]) -> Rendered:
    """A response from the current catalog's cache; one catalog is read once per request.
    Later requests for it are answered before Flask (cached_responses.py)."""
    catalog = _store().catalog
    key = cache_key(request.environ, base_url())
    environ = request.environ
    environ["feedserver.cache"] = "hit"

    def timed_render() -> Rendered:
        environ["feedserver.cache"] = "miss"
        started = time.perf_counter()
        rendered = render(catalog)
        current_app.extensions["feedserver.metrics"].render_seconds.observe(
            time.perf_counter() - started
        )
        return rendered

    return _cache().get(catalog, key, timed_render)


def respond(rendered: Rendered, max_age: int | None = None) -> Response:
    """Answer with a rendered body, honouring conditional requests and gzip."""
    seconds = current_settings().reload_interval if max_age is None else max_age
    status, headers, body = answer(rendered, request.environ, seconds)
    return Response(body, status=status, headers=headers)


def _collection_or_404(catalog: Catalog, kind: str, key: str) -> Collection:
    """The collection a path names: everything, a topic or provider, or a union (`a+b`)."""
    collection = catalog.everything if kind == ALL else combine.union(catalog, kind, key)
    if collection is None:
        noun = "topic" if kind == TOPIC else "provider"
        abort(404, description=f"no such {noun}: it has no published articles")
    return collection


def _feed_query() -> FeedQuery:
    settings = current_settings()
    try:
        return parse_feed_query(
            parameter_lists(request_query()), settings.feed_limit, settings.max_feed_limit
        )
    except BadParameter as error:
        abort(400, description=str(error))


def _selection() -> Selection:
    try:
        return parse_selection(parameter_lists(request_query()))
    except BadParameter as error:
        abort(400, description=str(error))


def _feed(kind: str, key: str, extension: str) -> Response:
    # The query is read only on a miss: a cached response was made from this very canonical
    # query (responses.canonical_query), and a bad query raises before anything is cached.
    redirects.to_canonical(_store().catalog, kind, key, f".{extension}")

    def render(catalog: Catalog) -> Rendered:
        base = _collection_or_404(catalog, kind, key)
        query, selection = _feed_query(), _selection()
        collection = combine.select(catalog, base, selection)
        narrowed_by = _selection_words(catalog, selection)
        preview = variant(request.environ) == PREVIEW
        return _render_feed(catalog, collection, extension, query, selection, narrowed_by, preview)

    return respond(_cached(render))


@bp.get(f"{ALL_FEEDS}.<{FORMATS}:extension>")
def all_feed(extension: str) -> Response:
    """Every published article."""
    return _feed(ALL, "", extension)


@bp.get(f"{collection_rule(TOPIC)}.<{FORMATS}:extension>")
def topic_feed(key: str, extension: str) -> Response:
    """The articles of one topic."""
    return _feed(TOPIC, key, extension)


@bp.get(f"{collection_rule(PROVIDER)}.<{FORMATS}:extension>")
def provider_feed(key: str, extension: str) -> Response:
    """The articles of one provider."""
    return _feed(PROVIDER, key, extension)


def _feed_links(collection: Collection) -> dict[str, str]:
    urls = site_urls()
    return {extension: urls.feed(collection, extension) for extension in FEED_EXTENSIONS}


def provider_subsets(
    catalog: Catalog, collection: Collection
) -> list[tuple[str, int, dict[str, str]]]:
    """A topic's per-provider feeds (`?provider=`), biggest first: (name, count, feeds by
    format); none unless the topic has articles from two providers or more."""
    if collection.kind != TOPIC:
        return []
    counts = Counter(a.provider.key for a in collection.articles if a.provider is not None)
    if len(counts) < 2:
        return []
    urls = site_urls()
    return [
        (
            catalog.providers[key].name,
            count,
            {ext: urls.feed(collection, ext, [("provider", key)]) for ext in FEED_EXTENSIONS},
        )
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if key in catalog.providers
    ][:MAX_PROVIDER_SUBSETS]


def _json(data: Any, public: bool = True) -> Rendered:
    """JSON; public data (the listings) may be read by any web page, /healthz may not."""
    return Rendered(json_bytes(data), CONTENT_TYPES["api"], None, (CORS,) if public else ())


def _listing(collections: dict[str, Collection]) -> list[dict[str, Any]]:
    urls = site_urls()
    return [
        {
            "slug": c.key,
            "name": c.name,
            "count": len(c.articles),
            "updated": utc_time(c.updated),
            "url": urls.page(c),
            "feeds": _feed_links(c),
        }
        for c in collections.values()
    ]


@bp.get(listing_path(TOPIC))
def topics_json() -> Response:
    """Every topic with its article count and feeds."""
    return respond(_cached(lambda catalog: _json(_listing(catalog.topics))))


@bp.get(listing_path(PROVIDER))
def providers_json() -> Response:
    """Every provider with its article count and feeds."""
    return respond(_cached(lambda catalog: _json(_listing(catalog.providers))))


@bp.get(OPML)
def feeds_opml() -> Response:
    """The all-articles feed and every topic and provider feed as an OPML subscription list."""

    def render(catalog: Catalog) -> Rendered:
        urls = site_urls()
        body = opml.render_opml(
            current_settings().site_title,
            [
                (title, [(c.name, urls.feed(c, "rss"), urls.page(c)) for c in group.values()])
                for title, group in (("Topics", catalog.topics), ("Providers", catalog.providers))
            ],
            everything=(
                f"All articles — {current_settings().site_title}",
                urls.feed(catalog.everything, "rss"),
                urls.page(catalog.everything),
            ),
        )
        return Rendered(body, CONTENT_TYPES["opml"], None, (CORS,))

    return respond(_cached(render))


@bp.get(HEALTH)
def healthz() -> Response:
    """200 when serving a current catalog, 503 when degraded or stale (load balancers read
    the status); counts for everyone, file names and reasons for trusted addresses only."""
    scheduler = current_app.extensions.get("feedserver.scheduler")
    settings = current_settings()
    status, data = health.health(
        _store(),
        current_app.extensions["feedserver.health"],
        reload_interval=settings.reload_interval if scheduler is not None else None,
        trusted=peer_in(request.remote_addr, settings.health_details_from),
    )
    recorder = current_app.extensions.get("feedserver.polls")
    if recorder is not None and recorder.db is not None:
        # Counting never stops serving: a failing stats database is reported, not fatal.
        data["stats"] = "failing" if recorder.error else "ok"
    rendered = _json(data, public=False)
    if status == 200:
        response = respond(rendered, max_age=0)
    else:  # no 304 may hide a failing check
        response = Response(rendered.body, status=status, headers=rendered.headers(False, 0))
    response.headers["Cache-Control"] = NO_STORE
    return response

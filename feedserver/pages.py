"""The pages a person reads: the home page, a page per topic and provider, the topic and
provider indexes and search, with paging; and the site's icon."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from markupsafe import Markup

from . import fragments, redirects
from .catalog import PROVIDER, TOPIC, Catalog, Collection, Names
from .config import current_settings
from .models import Article
from .preview import html, plural
from .query import BadParameter, Page, parameter_lists, parse_feed_query, select_page
from .responses import Rendered, valid_host
from .urls import (
    FAVICON,
    FEED_EXTENSIONS,
    HOME,
    PATHS,
    SEARCH,
    Urls,
    collection_rule,
    index_path,
    query_link,
)
from .web import (
    _cached,
    _collection_or_404,
    _feed_description,
    _feed_links,
    _feed_title,
    _store,
    base_url,
    provider_subsets,
    request_query,
    respond,
    site_urls,
)

bp = Blueprint("pages", __name__)

# How many topics and providers the home page names; the index pages name them all.
HOME_LISTED = 20
ICON_MAX_AGE = 86400


@bp.app_template_filter("plural")
def plural_filter(count: int, noun: str, nouns: str | None = None) -> str:
    """`{{ n|plural("article") }}`: `1 article`, `2 articles`."""
    return plural(count, noun, nouns)


@bp.app_context_processor
def site_links() -> dict[str, Any]:
    """What every page's header and footer link to: `urls` for links to pages and feeds,
    `paths` for the style sheet and icon (by path, as a page's own files)."""
    # An error page for a request with a bad Host header links by path alone.
    base = base_url() if current_settings().base_url or valid_host(request.host) else ""
    return {"urls": Urls(base), "paths": PATHS}


@bp.app_template_global("article_cards")
def article_cards(articles: Sequence[Article], macro: Any, names: Names, urls: Urls) -> Markup:
    """The cards of a page's or a feed preview's articles, each on its own line, each
    rendered once per catalog where the export keeps a memo (fragments.py), and the same
    list of cards (a feed's three previews show one) joined once."""

    def join() -> Markup:
        cards = (fragments.card(article, macro, names, urls) for article in articles)
        return Markup("".join(f"\n{card}\n" for card in cards))

    memo = fragments.current()
    if memo is None:
        return join()
    joined: Markup = memo.joined(("cards", urls.base), names, articles, join)
    return joined


@bp.app_context_processor
def site_language() -> dict[str, str]:
    """The language every page's <html lang> names (the language setting)."""
    return {"site_language": current_settings().language}


def _page_of(
    catalog: Catalog, collection: Collection, articles: Sequence[Article] | None = None
) -> tuple[Page, dict[str, str], int]:
    """The page of a collection's articles (or of `articles`) that `?page=` asks for, the
    URLs of the newer and older pages, and how many articles match in all."""
    if articles is None:
        articles = collection.articles
    size = current_settings().page_size
    try:
        query = parse_feed_query(parameter_lists(request_query()), size, size)
    except BadParameter as error:
        abort(400, description=str(error))
    page = select_page(articles, query, catalog.search, (collection.kind, collection.key))
    if page.number > page.last:
        abort(404, description=f"page {page.number} does not exist; the last page is {page.last}")
    # Only the known parameters, as in the cache key: a cached page is right for everyone.
    others = [(k, v) for k, v in request_query() if k != "page"]
    links = {}
    if page.number > 1:
        newer = others + ([("page", str(page.number - 1))] if page.number > 2 else [])
        links["newer"] = query_link(newer, request.path)
    if page.number < page.last:
        links["older"] = query_link([*others, ("page", str(page.number + 1))], request.path)
    return page, links, page.total


def _largest(collections: Iterable[Collection], count: int | None = None) -> list[Collection]:
    ranked = sorted(collections, key=lambda c: (-len(c.articles), c.name.casefold()))
    return ranked if count is None else ranked[:count]


@bp.get(HOME)
def index() -> Response:
    """The home page: the newest articles, the largest topics and providers, every feed."""

    def render(catalog: Catalog) -> Rendered:
        everything = catalog.everything
        page, pager, _ = _page_of(catalog, everything)
        return html(
            "index.html",
            names=catalog.names,
            description=current_settings().site_description,
            everything=everything,
            page=page,
            paging=pager,
            feeds=_feed_links(everything),
            feed_title=current_settings().site_title,
            topics=_largest(catalog.topics.values(), HOME_LISTED),
            providers=_largest(catalog.providers.values(), HOME_LISTED),
            topic_count=len(catalog.topics),
            provider_count=len(catalog.providers),
        )

    return respond(_cached(render))


def _collection_page(kind: str, key: str) -> Response:
    redirects.to_canonical(_store().catalog, kind, key, "")

    def render(catalog: Catalog) -> Rendered:
        collection = _collection_or_404(catalog, kind, key)
        page, pager, _ = _page_of(catalog, collection)
        return html(
            "collection.html",
            names=catalog.names,
            title=_feed_title(collection),
            feed_title=_feed_title(collection),
            description=_feed_description(collection),
            collection=collection,
            page=page,
            paging=pager,
            feeds=_feed_links(collection),
            subsets=provider_subsets(catalog, collection),
        )

    return respond(_cached(render))


@bp.get(collection_rule(TOPIC))
def topic_page(key: str) -> Response:
    """A topic's newest articles as a web page."""
    return _collection_page(TOPIC, key)


@bp.get(collection_rule(PROVIDER))
def provider_page(key: str) -> Response:
    """A provider's newest articles as a web page."""
    return _collection_page(PROVIDER, key)


def _index_page(kind: str) -> Response:
    def render(catalog: Catalog) -> Rendered:
        group = catalog.topics if kind == TOPIC else catalog.providers
        title = "Topics" if kind == TOPIC else "Providers"
        everything = catalog.everything
        urls = site_urls()
        return html(
            "listing.html",
            title=title,
            noun="topic" if kind == TOPIC else "provider",
            kind=kind,
            rows=[(c, urls.page(c), _feed_links(c)) for c in _largest(group.values())],
            feeds=_feed_links(everything),
            feed_title=current_settings().site_title,
        )

    return respond(_cached(render))


@bp.get(index_path(TOPIC))
def topics_page() -> Response:
    """Every topic with its article count and feeds."""
    return _index_page(TOPIC)


@bp.get(index_path(PROVIDER))
def providers_page() -> Response:
    """Every provider with its article count and feeds."""
    return _index_page(PROVIDER)


@bp.get(SEARCH)
def search() -> Response:
    """Articles whose title or excerpt holds every word of `q`, with a feed of the search."""

    def render(catalog: Catalog) -> Rendered:
        words = next((value for name, value in request_query() if name == "q"), "").strip()
        everything = catalog.everything
        page, pager, total = _page_of(catalog, everything, None if words else ())
        return html(
            "search.html",
            names=catalog.names,
            q=words,
            page=page,
            paging=pager,
            matches=total,
            feeds=_search_feeds(everything, words),
            feed_title=f"Search: {words}" if words else current_settings().site_title,
        )

    return respond(_cached(render))


def _search_feeds(everything: Collection, words: str) -> dict[str, str]:
    if not words:
        return _feed_links(everything)
    urls = site_urls()
    return {ext: urls.feed(everything, ext, [("q", words)]) for ext in FEED_EXTENSIONS}


@bp.get(FAVICON)
def favicon() -> Response:
    """The site's icon, for browsers that ask for it at the traditional place."""
    response = current_app.send_static_file("favicon.svg")
    response.cache_control.public = True
    response.cache_control.max_age = ICON_MAX_AGE
    return response

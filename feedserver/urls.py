"""The site's URL layout, in one place: where each collection's feeds and page live, the
listings, the OPML, search and the static files. Routes take their rules from here; the
renderers, the pages, the templates, the static export, WebSub and the stats make every link
with a `Urls` (the layout's paths under one site's base URL)."""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import ALL, PROVIDER, TOPIC, Collection
from .query import encode_query

FEED_EXTENSIONS = ("rss", "atom", "json")
KIND_PATHS = {TOPIC: "topics", PROVIDER: "providers"}
HOME = "/"
ALL_FEEDS = "/feed"  # what the feeds of every article extend: /feed.rss, /feed.atom, ...
SEARCH = "/search"
OPML = "/feeds.opml"
FAVICON = "/favicon.ico"
STATIC = "/static"
# The operator's pages: health, the audience figures, and Prometheus metrics.
HEALTH = "/healthz"
STATS = "/stats"
STATS_JSON = "/stats.json"
METRICS = "/metrics"


def collection_path(kind: str, key: str = "") -> str:
    """The path a collection's feeds extend: `/feed`, `/topics/<key>`, `/providers/<key>`."""
    if kind == ALL:
        return ALL_FEEDS
    return f"/{KIND_PATHS[kind]}/{key}"


def collection_rule(kind: str) -> str:
    """The route rule of collection_path: `/feed`, `/topics/<key>`, `/providers/<key>`."""
    return collection_path(kind, "<key>")


def index_path(kind: str) -> str:
    """The page listing every topic or provider: `/topics`, `/providers`."""
    return f"/{KIND_PATHS[kind]}"


def listing_path(kind: str) -> str:
    """The JSON listing of every topic or provider: `/topics.json`, `/providers.json`."""
    return f"{index_path(kind)}.json"


def query_link(query: Iterable[tuple[str, str]], path: str) -> str:
    """A link to the same page with another query: `?<query>`, or the page's path when the
    query is empty (an empty link would keep the current query)."""
    encoded = encode_query(query)
    return f"?{encoded}" if encoded else path


class Urls:
    """The absolute URLs of one site: its base URL (no trailing slash) and the layout's
    paths. With an empty base they are the paths alone (see PATHS)."""

    __slots__ = ("base",)

    def __init__(self, base: str = "") -> None:
        self.base = base

    def path(self, path: str, query: str = "") -> str:
        """Any path of the site, with an optional query string (already encoded)."""
        return f"{self.base}{path}?{query}" if query else f"{self.base}{path}"

    def home(self) -> str:
        """The home page."""
        return self.path(HOME)

    def feed(
        self, collection: Collection, extension: str, query: Iterable[tuple[str, str]] = ()
    ) -> str:
        """A collection's feed in a format, with an optional query."""
        return self.feed_of(collection.kind, collection.key, extension, query)

    def feed_of(
        self, kind: str, key: str, extension: str, query: Iterable[tuple[str, str]] = ()
    ) -> str:
        """The feed of everything, a topic or a provider, by kind and key, with an optional
        query (pairs, kept in their order)."""
        return self.path(f"{collection_path(kind, key)}.{extension}", encode_query(query))

    def everything(self, extension: str) -> str:
        """The feed of every article in a format."""
        return self.feed_of(ALL, "", extension)

    def page(self, collection: Collection) -> str:
        """A collection's HTML page (the home page for everything)."""
        return self.page_of(collection.kind, collection.key)

    def page_of(self, kind: str, key: str) -> str:
        """The HTML page of everything, a topic or a provider, by kind and key."""
        return self.path(HOME if kind == ALL else collection_path(kind, key))

    def index(self, kind: str) -> str:
        """The page listing every topic or provider."""
        return self.path(index_path(kind))

    def listing(self, kind: str) -> str:
        """The JSON listing of every topic or provider."""
        return self.path(listing_path(kind))

    def opml(self) -> str:
        """The OPML subscription list of every feed."""
        return self.path(OPML)

    def search(self) -> str:
        """The search page."""
        return self.path(SEARCH)

    def static(self, name: str) -> str:
        """A bundled static file."""
        return self.path(f"{STATIC}/{name}")


# The layout's paths: the URLs of a site whose base is empty.
PATHS = Urls()
# The listings of every feed, as data any page may fetch.
LISTINGS = (PATHS.listing(TOPIC), PATHS.listing(PROVIDER), PATHS.opml())

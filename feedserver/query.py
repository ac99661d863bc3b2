"""A feed's query parameters: reading them strictly, and selecting the page of articles."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from .keys import provider_for, topic_for
from .models import Article
from .search import CollectionKey, SearchIndex

SORTS = ("date", "heat", "quality")
# The parameters that choose a feed's articles by topic and provider (any feed takes them).
SELECTION_PARAMETERS = ("topic", "provider", "exclude_topic", "exclude_provider")
# Every query parameter a feed or page reads, in the order a canonical query lists them. A
# new parameter is added here; anything else a client sends is dropped before the cache key
# and the response's own links are made (known_parameters), so it never changes a response.
KNOWN_PARAMETERS = ("limit", "page", "q", "min_quality", "sort", *SELECTION_PARAMETERS)
MAX_SELECTION_VALUES = 20  # values of one selection parameter
MAX_SELECTION_CHARS = 200  # characters of one value
MAX_PAGE = 1_000_000
MAX_QUERY_CHARS = 200
MAX_QUALITY = 1_000_000
# Plain ASCII decimals only: float() would also take "1_0", "inf" and other scripts' digits.
_DECIMAL = re.compile(r"[0-9]{1,7}(?:\.[0-9]{1,6})?")


class BadParameter(ValueError):
    """A query parameter has a bad value; the message names it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"bad value for query parameter '{name}': {reason}")
        self.name = name


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """What a client asked of a feed: which page of which matching articles, in what order."""

    limit: int
    page: int = 1
    words: tuple[str, ...] = ()
    min_quality: float | None = None
    sort: str = "date"

    def matches(self, article: Article) -> bool:
        """Whether the article passes the `q` and `min_quality` filters."""
        if self.min_quality is not None and (
            article.quality is None or article.quality < self.min_quality
        ):
            return False
        if self.words:
            text = f"{article.title}\n{article.excerpt}".casefold()
            return all(word in text for word in self.words)
        return True

    @property
    def filtered(self) -> bool:
        """Whether the query narrows or reorders the collection."""
        return bool(self.words) or self.min_quality is not None or self.sort != "date"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of matching articles, and how many pages there are."""

    articles: Sequence[Article]
    number: int
    last: int  # the number of the last page; 1 when nothing matches
    total: int  # how many articles match, on every page


QueryPairs = tuple[tuple[str, str], ...]


def known_parameters(query_string: str) -> QueryPairs:
    """The feed parameters of a raw WSGI query string, in canonical order; others dropped.

    Repeated parameters are kept (in the order sent), so the parser can refuse them."""
    # WSGI hands the query over as latin-1; its bytes are UTF-8 with percent escapes.
    text = query_string.encode("latin-1", "replace").decode("utf-8", "replace")
    return canonical_pairs(parse_qsl(text, keep_blank_values=True))


_ORDER = {name: index for index, name in enumerate(KNOWN_PARAMETERS)}


def canonical_pairs(pairs: Iterable[tuple[str, str]]) -> QueryPairs:
    """The feed parameters among pairs, in canonical order (stable for repeated names)."""
    known = [(name, value) for name, value in pairs if name in _ORDER]
    return tuple(sorted(known, key=lambda pair: _ORDER[pair[0]]))


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string of pairs: spaces as `+`, every other reserved character escaped."""
    listed = list(pairs)
    return urlencode(listed) if listed else ""  # most links have no query: skip urlencode


def parameter_lists(pairs: QueryPairs) -> dict[str, list[str]]:
    """Pairs as the name-to-values mapping parse_feed_query reads."""
    lists: dict[str, list[str]] = {}
    for name, value in pairs:
        lists.setdefault(name, []).append(value)
    return lists


def _single(args: Mapping[str, list[str]], name: str) -> str | None:
    values = args.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter(name, "given more than once")
    return values[0]


def _bounded_int(args: Mapping[str, list[str]], name: str, default: int, maximum: int) -> int:
    text = _single(args, name)
    if text is None:
        return default
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise BadParameter(name, f"must be a whole number from 1 to {maximum}")
    number = int(text)
    if not 1 <= number <= maximum:
        raise BadParameter(name, f"must be a whole number from 1 to {maximum}")
    return number


def parse_feed_query(
    args: Mapping[str, list[str]], feed_limit: int, max_feed_limit: int
) -> FeedQuery:
    """Read limit, page, q, min_quality and sort; unknown parameters are ignored."""
    limit = _bounded_int(args, "limit", feed_limit, max_feed_limit)
    page = _bounded_int(args, "page", 1, MAX_PAGE)
    words: tuple[str, ...] = ()
    q = _single(args, "q")
    if q is not None:
        if len(q) > MAX_QUERY_CHARS:
            raise BadParameter("q", f"must be at most {MAX_QUERY_CHARS} characters")
        words = tuple(dict.fromkeys(word.casefold() for word in q.split()))
    min_quality = None
    text = _single(args, "min_quality")
    if text is not None:
        if not _DECIMAL.fullmatch(text.strip()) or not 0 < float(text) <= MAX_QUALITY:
            raise BadParameter("min_quality", f"must be a number above 0 and at most {MAX_QUALITY}")
        min_quality = float(text)
    sort = _single(args, "sort") or "date"
    if sort not in SORTS:
        raise BadParameter("sort", f"must be one of {', '.join(SORTS)}")
    return FeedQuery(limit, page, words, min_quality, sort)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which articles of a feed a client chose by topic and provider (keys, not names): any
    of `topics` (when given) and any of `providers` (when given), none of the excluded."""

    topics: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()
    exclude_topics: frozenset[str] = frozenset()
    exclude_providers: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.topics or self.providers or self.exclude_topics or self.exclude_providers)

    def canonical_query(self) -> list[tuple[str, str]]:
        """The selection as query parameters in a fixed order, whatever order it was asked in."""
        chosen = zip(
            SELECTION_PARAMETERS,
            (self.topics, self.providers, self.exclude_topics, self.exclude_providers),
            strict=True,
        )
        return [(name, key) for name, keys in chosen for key in sorted(keys)]


def topic_key(value: str) -> str | None:
    """The key of the topic a client names by its key or its name (`Microsoft AI`)."""
    topic = topic_for(value.strip())
    return topic.key if topic is not None else None


def provider_key(value: str) -> str | None:
    """The key of the provider a client names by its key or domain (`www.TechCrunch.com`)."""
    provider = provider_for("", value.strip())
    return provider.key if provider is not None else None


def _keys(
    args: Mapping[str, list[str]], name: str, key: Callable[[str], str | None]
) -> frozenset[str]:
    values = args.get(name) or []
    if len(values) > MAX_SELECTION_VALUES:
        raise BadParameter(name, f"may be given at most {MAX_SELECTION_VALUES} times")
    keys = set()
    for value in values:
        found = key(value) if len(value) <= MAX_SELECTION_CHARS else None
        if not found:
            what = "topic" if name.endswith("topic") else "provider"
            raise BadParameter(name, f"must name a {what} (at most {MAX_SELECTION_CHARS} chars)")
        keys.add(found)
    return frozenset(keys)


def parse_selection(args: Mapping[str, list[str]]) -> Selection:
    """Read topic, provider, exclude_topic and exclude_provider; each may repeat. A value
    that names no topic or provider served now simply matches nothing."""
    return Selection(
        _keys(args, "topic", topic_key),
        _keys(args, "provider", provider_key),
        _keys(args, "exclude_topic", topic_key),
        _keys(args, "exclude_provider", provider_key),
    )


def _sort_key(sort: str) -> Callable[[Article], tuple[float, float, str]]:
    def key(article: Article) -> tuple[float, float, str]:
        value = getattr(article, sort)
        primary = -value if value is not None else math.inf
        return (primary, -article.published_at.timestamp(), article.url)

    return key


def select_page(
    articles: Sequence[Article],
    query: FeedQuery,
    search: SearchIndex | None = None,
    key: CollectionKey = ("", ""),
) -> Page:
    """The page of articles the query asks for, in a stable order.

    With the catalog's search index and the collection's key, a filtered page costs what it
    returns; without them (or for articles that are not a collection of that catalog), the
    collection is scanned: the reference the index is tested against.
    """
    start = (query.page - 1) * query.limit
    if query.filtered and search is not None:
        found = search.select(
            key, articles, query.words, query.min_quality, query.sort, start, start + query.limit
        )
        if found is not None:
            selected, count = found
            return Page(selected, query.page, max(1, math.ceil(count / query.limit)), count)
    if query.filtered:
        chosen: Sequence[Article] = [a for a in articles if query.matches(a)]
        if query.sort != "date":
            chosen = sorted(chosen, key=_sort_key(query.sort))
    else:
        chosen = articles  # already newest first, ties by URL
    last = max(1, math.ceil(len(chosen) / query.limit))
    return Page(chosen[start : start + query.limit], query.page, last, len(chosen))

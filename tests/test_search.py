"""The search index (feedserver.search): a filtered page from the index is exactly the page a
scan of the collection gives (FeedQuery.matches, then a sort), for random articles and
queries; and the index is built once per catalog, whole even when requests race to build it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver import combine
from feedserver.bitsets import bit_set, members
from feedserver.catalog import PROVIDER, TOPIC, Catalog, Collection, empty_catalog, update_catalog
from feedserver.combine import UNION_SEPARATOR
from feedserver.models import Article, Provider, Topic
from feedserver.query import FeedQuery, Page, Selection, parse_feed_query, select_page

NOW = datetime(2025, 1, 1, tzinfo=UTC)
# Pieces of text that make sub-word matches, punctuation, and casefolding that changes
# lengths or merges letters (ß/SS, the ﬁ ligature, final sigma, dotted I), plus whitespace
# that str.split() knows and a plain `in` does not care about.
PIECES = [
    "ab", "Ab", "abc", "b.", "(a", "x-y", "über", "UBER", "straße", "STRASSE", "ﬁne", "FINE",
    "ΣΟΦΙΑ", "σοφίας", "ς", "İstanbul", "i̇", "é", "e\u0301", "日本", "本", "7", "-", ",",
]  # fmt: skip
SPACES = [" ", " ", "\n", "\t", "\u00a0", "\u2003", "\x1c"]
text = st.lists(st.sampled_from(PIECES) | st.sampled_from(SPACES), max_size=12).map("".join)
value = st.none() | st.integers(-2, 6).map(float) | st.sampled_from([2.5, 0.5, 1e6])


@st.composite
def article(draw: st.DrawFn, number: int) -> Article:
    topics = draw(st.lists(st.sampled_from(["T1", "T2", "T3"]), unique=True, max_size=3))
    provider = draw(st.sampled_from([None, "p1.example", "p2.example"]))
    return Article(
        url=f"https://example.com/{draw(st.integers(0, 3))}/{number}",
        title=draw(text),
        excerpt=draw(text),
        published_at=NOW - timedelta(hours=draw(st.integers(0, 3))),  # many ties
        provider=Provider(provider, provider, provider) if provider else None,
        topics=tuple(Topic(name.lower(), name) for name in topics),
        image_text="",
        related_text="",
        quality=draw(value),
        heat=draw(value),
        published=True,
    )


def catalog_of(articles: list[Article]) -> Catalog:
    """A catalog of these articles, built in one go."""
    return update_catalog(empty_catalog("Site"), (), articles, NOW, (), {}, len(articles))


@st.composite
def catalog_and_queries(draw: st.DrawFn) -> tuple[Catalog, list[FeedQuery]]:
    count = draw(st.integers(0, 30))
    articles = [draw(article(number)) for number in range(count)]
    catalog = catalog_of(articles)
    if count and draw(st.booleans()):
        # A snapshot made by an incremental update, sharing collections with the first.
        gone = draw(st.lists(st.sampled_from(catalog.everything.articles), unique=True))
        arrived = [draw(article(count + n)) for n in range(draw(st.integers(0, 5)))]
        catalog = update_catalog(catalog, gone, arrived, NOW, (), {}, count)
    texts = [f"{a.title} {a.excerpt}" for a in catalog.everything.articles] or [""]
    queries = []
    for _ in range(draw(st.integers(1, 6))):
        source = draw(st.sampled_from(texts))
        begin = draw(st.integers(0, len(source)))
        piece = source[begin : begin + draw(st.integers(0, 8))]  # sub-word pieces too
        q = draw(st.sampled_from([piece, piece + " " + draw(text), draw(text), ""]))
        args = {"q": [q], "sort": [draw(st.sampled_from(["date", "heat", "quality"]))]}
        if draw(st.booleans()):
            args["min_quality"] = [draw(st.sampled_from(["1", "2.5", "3", "0.5", "1000000"]))]
        args["limit"] = [str(draw(st.integers(1, 7)))]
        args["page"] = [str(draw(st.integers(1, 4)))]
        queries.append(parse_feed_query(args, 50, 500))
    return catalog, queries


def collections(catalog: Catalog) -> list[Collection]:
    return [catalog.everything, *catalog.topics.values(), *catalog.providers.values()]


def indexed(catalog: Catalog, collection: Collection, query: FeedQuery) -> Page:
    key = (collection.kind, collection.key)
    return select_page(collection.articles, query, catalog.search, key)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog_and_queries())
def test_the_index_gives_exactly_the_scan(case: tuple[Catalog, list[FeedQuery]]) -> None:
    catalog, queries = case
    for collection in collections(catalog):
        for query in queries:
            scanned = select_page(collection.articles, query)
            found = indexed(catalog, collection, query)
            assert [a.url for a in found.articles] == [a.url for a in scanned.articles], query
            assert (found.number, found.last) == (scanned.number, scanned.last), query


def realistic_catalog(count: int) -> Catalog:
    words = "cloud chip model data market launch robot energy quantum"
    articles = [
        Article(
            url=f"https://example.com/{n}",
            title=f"{words.split()[n % 9]} story {n}",
            excerpt=f"About {words.split()[n % 7]} and {words.split()[n % 5]}, number {n}.",
            published_at=NOW - timedelta(minutes=n // 3),
            provider=Provider(f"p{n % 4}", f"P{n % 4}", f"p{n % 4}"),
            topics=(Topic(f"t{n % 6}", f"T{n % 6}"),),
            image_text="",
            related_text="",
            quality=float(n % 11) if n % 13 else None,
            heat=float(n % 17),
            published=True,
        )
        for n in range(count)
    ]
    return catalog_of(articles)


QUERIES = [
    {"q": ["cloud"]},
    {"q": ["clou story"], "sort": ["heat"]},
    {"sort": ["quality"], "page": ["3"]},
    {"min_quality": ["7"]},
    {"min_quality": ["3"], "sort": ["heat"], "q": ["and"], "page": ["9"]},
    {"q": ["number 1"], "sort": ["quality"], "limit": ["500"]},
    {"q": ["robot", "quantum"][:1], "sort": ["heat"], "page": ["40"]},
]


@pytest.mark.parametrize("args", QUERIES)
def test_dense_and_deep_pages_match_the_scan(args: dict[str, list[str]]) -> None:
    # Thousands of articles: dense bit sets, the walk along an order, deep pages.
    catalog = realistic_catalog(3000)
    query = parse_feed_query(args, 50, 500)
    for collection in collections(catalog):
        assert indexed(catalog, collection, query) == select_page(collection.articles, query)


def test_bit_sets_round_trip() -> None:
    numbers = [0, 1, 7, 8, 9, 63, 64, 200, 999]
    bits = bit_set(numbers, 1000)
    assert bits.bit_count() == len(numbers)
    assert list(members(bits, 1000)) == numbers
    for skip in range(len(numbers) + 1):
        assert list(members(bits, 1000, skip)) == numbers[skip:]


def test_parts_are_built_once_per_catalog_and_kept() -> None:
    catalog = realistic_catalog(500)
    query = parse_feed_query({"q": ["cloud"], "sort": ["heat"], "min_quality": ["2"]}, 50, 500)
    assert catalog.search.nbytes() < 1000  # nothing built yet
    first = indexed(catalog, catalog.everything, query)
    words = catalog.search.words()
    built = catalog.search.nbytes()
    assert indexed(catalog, catalog.everything, query) == first
    assert catalog.search.words() is words
    assert catalog.search.nbytes() == built


def test_racing_requests_build_whole_parts() -> None:
    catalog = realistic_catalog(4000)
    queries = [parse_feed_query(args, 50, 500) for args in QUERIES]
    expected = [select_page(catalog.everything.articles, query) for query in queries]
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def request() -> None:
        try:
            start.wait()
            for query, page in zip(queries, expected, strict=True):
                assert indexed(catalog, catalog.everything, query) == page
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures


def test_articles_that_are_not_a_collection_of_the_catalog_are_scanned() -> None:
    catalog = realistic_catalog(100)
    query = parse_feed_query({"q": ["cloud"]}, 50, 500)
    subset = catalog.everything.articles[::2]
    assert catalog.search.select(("topic", "t1"), subset, ("cloud",), None, "date", 0, 5) is None
    page = select_page(subset, query, catalog.search, ("topic", "t1"))
    assert page == select_page(subset, query)


def test_prepare_builds_everything_ahead() -> None:
    catalog = realistic_catalog(200)
    ready_before = catalog.search.ready
    catalog.search.prepare()
    assert (ready_before, catalog.search.ready) == (False, True)
    built = catalog.search.nbytes()
    query = parse_feed_query({"q": ["cloud"], "sort": ["quality"], "min_quality": ["2"]}, 50, 500)
    indexed(catalog, catalog.topics["t1"], query)
    # Only a dense collection's bit set may be added by a request after prepare().
    assert catalog.search.nbytes() - built < 200


def test_feeds_answer_filtered_requests_from_the_index(client: FlaskClient) -> None:
    from feedserver.store import CatalogStore

    store: CatalogStore = client.application.extensions["feedserver.store"]
    for path in ("/feed.json?q=supercomputer&sort=heat", "/topics/ai.json?min_quality=1"):
        items = client.get(path).get_json()["items"]
        assert items
    assert store.catalog.search.nbytes() > 1000  # the index was used and kept


def test_the_reload_job_builds_each_new_catalogs_index(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    from feedserver import create_app

    write_seed("a.txt", topics=["Alpha"])
    app = create_app({"seeds_dir": str(tmp_seeds)}, reload_in_background=True)
    store = app.extensions["feedserver.store"]
    scheduler = app.extensions["feedserver.scheduler"]
    assert not store.catalog.search.ready  # built by the job, not by create_app
    scheduler.reload()  # nothing changed: the served catalog's index is built all the same
    assert store.catalog.search.ready
    write_seed("b.txt", topics=["Beta"])
    before = store.catalog
    scheduler.reload()
    assert store.catalog is not before
    assert store.catalog.search.ready


# --- combined and narrowed feeds (combine.py) from the index's bit sets ----------------------


def scanned_selection(base: Collection, selection: Selection) -> tuple[Article, ...]:
    """What a selection keeps of a base collection, by testing every article of it."""

    def keeps(article: Article) -> bool:
        provider = article.provider.key if article.provider is not None else None
        topics = {topic.key for topic in article.topics}
        if selection.providers and provider not in selection.providers:
            return False
        if provider is not None and provider in selection.exclude_providers:
            return False
        if selection.topics and not topics & selection.topics:
            return False
        return not topics & selection.exclude_topics

    return tuple(article for article in base.articles if keeps(article))


keys = st.frozensets(st.sampled_from(["t1", "t2", "t3", "t9"]), max_size=3)
provider_keys = st.frozensets(st.sampled_from(["p1.example", "p2.example", "p9"]), max_size=2)
selections = st.builds(
    Selection,
    topics=keys,
    providers=provider_keys,
    exclude_topics=keys,
    exclude_providers=provider_keys,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog_and_queries(), selections, st.data())
def test_unions_and_selections_equal_a_scan(
    built: tuple[Catalog, list[FeedQuery]], selection: Selection, data: st.DataObject
) -> None:
    catalog = built[0]
    kind, names = data.draw(
        st.sampled_from([(TOPIC, ["t1", "t2", "t3"]), (PROVIDER, ["p1.example", "p2.example"])])
    )
    served = [name for name in names if catalog.collection(kind, name) is not None]
    chosen = data.draw(st.lists(st.sampled_from(served), unique=True, min_size=1)) if served else []
    bases = [catalog.everything]
    if chosen:
        union = combine.union(catalog, kind, UNION_SEPARATOR.join(chosen))
        assert union is not None
        parts = [catalog.collection(kind, name) for name in chosen]
        expected = [
            a for a in catalog.everything.articles if any(a in p.articles for p in parts if p)
        ]
        assert list(union.articles) == expected
        assert all(x is y for x, y in zip(union.articles, expected, strict=True))
        bases.append(union)
    for base in bases:
        narrowed = combine.select(catalog, base, selection)
        assert narrowed.articles == scanned_selection(base, selection)
        assert (narrowed.kind, narrowed.key, narrowed.changed_at) == (
            base.kind,
            base.key,
            base.changed_at,
        )

"""The search index follows its catalog (feedserver.search, feedserver.renumber): the index of
a catalog made by a reload, renumbered from the index before it with only what came and went
taken out or put in, is the very index a fresh build of that catalog gives, after any run of
random changes: articles added, removed, edited in place, moved in time, scheduled."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver import renumber
from feedserver.bitsets import members
from feedserver.catalog import Catalog, collection_keys, update_catalog
from feedserver.models import Article, Provider, Topic
from feedserver.search import SearchIndex
from feedserver.store import CatalogStore

from .test_search import NOW, article, catalog_of


def parts(index: SearchIndex) -> dict[str, Any]:
    """Everything an index holds once whole, in a form that compares by content (a token's
    place in the word list may differ; its posting's members and form may not)."""
    index.prepare()
    words = index.words()
    assert words.text == "\n".join(words.tokens)
    assert list(words.starts) == [
        sum(len(token) + 1 for token in words.tokens[:n]) for n in range(len(words.tokens))
    ]
    postings = {}
    for token, count, posting in zip(words.tokens, words.counts, words.postings, strict=True):
        dense = isinstance(posting, int)
        found = list(members(posting, words.size)) if isinstance(posting, int) else list(posting)
        assert found == sorted(found) and len(found) == count > 0, token
        postings[token] = (dense, found)
    at_least = index.at_least()
    return {
        "size": words.size,
        "postings": postings,
        "orders": {
            field: (list(order.order), list(order.rank), list(order.keys))
            for field, order in index._orders.items()
        },
        "at_least": (at_least.step, at_least.prefixes),
        "members": {key: list(numbers) for key, numbers in index._collection_members().items()},
        "all": index.everything(),
    }


def fresh_parts(catalog: Catalog) -> dict[str, Any]:
    """The parts of a fresh build of the catalog's index."""
    return parts(SearchIndex(catalog.everything.articles, collection_keys))


def edited(old: Article, rng: random.Random, title: str) -> Article:
    """The article as an edit leaves it: a new title, maybe a new date (a new position)."""
    when = old.published_at
    if rng.random() < 0.5:
        when += timedelta(hours=rng.randint(-3, 3))
    return Article(
        old.url, title, old.excerpt, when, old.provider, old.topics, "", "", old.quality,
        old.heat, True,
    )  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_followed_index_equals_a_fresh_build(data: st.DataObject) -> None:
    count = data.draw(st.integers(0, 25))
    catalog = catalog_of([data.draw(article(number)) for number in range(count)])
    runs = data.draw(st.sampled_from([renumber.MAX_RUNS, 0]))  # 0: member by member
    next_number = count
    with mock.patch.object(renumber, "MAX_RUNS", runs):
        for _ in range(data.draw(st.integers(1, 3))):
            catalog.search.prepare()
            shown = list(catalog.everything.articles) + list(catalog.scheduled)
            gone = data.draw(st.lists(st.sampled_from(shown), unique=True)) if shown else []
            arrived = []
            for old in gone:  # some of those that went come back edited
                if data.draw(st.booleans()):
                    title = data.draw(st.sampled_from(["ab", "abc x-y", "new words", ""]))
                    arrived.append(edited(old, random.Random(next_number), title))
            for _ in range(data.draw(st.integers(0, 5))):
                arrived.append(data.draw(article(next_number)))
                next_number += 1
            catalog = update_catalog(catalog, gone, arrived, NOW, (), {}, next_number)
            assert parts(catalog.search) == fresh_parts(catalog)


WORDS = [f"common{n}" for n in range(12)] + [f"rare{n}" for n in range(400)]
TOPICS = [f"t{n}" for n in range(30)]


def _random_article(rng: random.Random, number: int) -> Article:
    """An article of a big random catalog: common words (dense postings) and rare ones."""
    words = rng.sample(WORDS[:12], 3) + rng.sample(WORDS, rng.randint(0, 4))
    topics = tuple(Topic(t, t.upper()) for t in rng.sample(TOPICS, rng.randint(0, 3)))
    provider = f"p{rng.randint(0, 9)}"
    return Article(
        url=f"https://example.com/{number}",
        title=" ".join(words[:3]),
        excerpt=" ".join(words[3:]),
        published_at=NOW - timedelta(minutes=rng.randint(0, 5000)),
        provider=Provider(provider, provider, provider),
        topics=topics,
        image_text="",
        related_text="",
        quality=rng.choice([None, 1.0, 2.0, rng.random() * 5]),
        heat=rng.choice([None, rng.random() * 100]),
        published=True,
    )


def test_a_big_catalog_followed_through_many_reloads_equals_fresh_builds() -> None:
    rng = random.Random(20)
    catalog = catalog_of([_random_article(rng, number) for number in range(3000)])
    next_number = 3000
    for round_ in range(12):
        catalog.search.prepare()
        served = list(catalog.everything.articles)
        share = rng.choice([0.0, 0.005, 0.01, 0.05, 0.3])
        gone = rng.sample(served, int(len(served) * share))
        arrived = []
        for old in gone[: len(gone) // 2]:  # edits (in place or moved), the rest removals
            arrived.append(edited(old, rng, f"{old.title} edited{round_}"))
        for _ in range(rng.choice([0, 1, 30, 200])):  # new articles, the newest often
            arrived.append(_random_article(rng, next_number))
            next_number += 1
        catalog = update_catalog(catalog, gone, arrived, NOW, (), {}, next_number)
        assert catalog.search._previous is not None  # made from the index before
        assert parts(catalog.search) == fresh_parts(catalog), round_
        assert catalog.search._previous is None


def test_an_index_not_yet_whole_is_not_followed() -> None:
    rng = random.Random(1)
    catalog = catalog_of([_random_article(rng, number) for number in range(50)])
    successor = update_catalog(catalog, [], [_random_article(rng, 50)], NOW, (), {}, 51)
    assert successor.search._previous is None
    assert parts(successor.search) == fresh_parts(successor)


def test_a_reload_follows_the_served_index(tmp_path: Path) -> None:
    for number in range(40):
        (tmp_path / f"{number}.md").write_text(
            f"---\ntitle: Article {number} about cloud\nwebUrl: https://example.com/{number}\n"
            f"publishedDateTime: 2024-01-{number % 28 + 1:02d}\npublished: true\n---\n",
            encoding="utf-8",
        )
    store = CatalogStore(tmp_path, 100_000, "Site")
    store.reload()
    store.catalog.search.prepare()
    (tmp_path / "3.md").write_text(
        "---\ntitle: Renamed storage piece\nwebUrl: https://example.com/3\n"
        "publishedDateTime: 2024-02-01\npublished: true\n---\n",
        encoding="utf-8",
    )
    (tmp_path / "4.md").unlink()
    store.reload()
    assert store.catalog.search._previous is not None
    assert parts(store.catalog.search) == fresh_parts(store.catalog)
    found = store.catalog.search.select(
        ("all", ""), store.catalog.everything.articles, ["storage"], None, "date", 0, 10
    )
    assert found is not None
    assert [a.url for a in found[0]] == ["https://example.com/3"]

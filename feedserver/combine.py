"""Combined feeds: the union of several topics or providers (`/topics/ai+azure.rss`, as
WordPress spells it), and a feed narrowed by the `topic=`, `provider=`, `exclude_topic=` and
`exclude_provider=` parameters. Each is a Collection like any other, so paging, validators
and rendering treat it the same way."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from .catalog import ALL, TOPIC, Catalog, Collection
from .models import Article
from .query import Selection

# How a path names several topics or providers at once.
UNION_SEPARATOR = "+"
MAX_UNION = 20


def _newest_first(article: Article) -> tuple[float, str]:
    return (-article.published_at.timestamp(), article.url)


def _merged(lists: Iterable[Sequence[Article]]) -> tuple[Article, ...]:
    """Lists sorted newest first, merged into one, each article once."""
    merged: list[Article] = []
    for article in heapq.merge(*lists, key=_newest_first):
        # An article in several lists has one sort key of its own: its copies are adjacent.
        if not merged or merged[-1] is not article:
            merged.append(article)
    return tuple(merged)


def union(catalog: Catalog, kind: str, key: str) -> Collection | None:
    """The collection a path names: one topic or provider, or `a+b` for several; None when
    any of them is not served (or when there are too many)."""
    keys = list(dict.fromkeys(key.split(UNION_SEPARATOR)))
    if len(keys) > MAX_UNION:
        return None
    if len(keys) == 1:
        return catalog.collection(kind, keys[0])
    parts = [catalog.collection(kind, part) for part in keys]
    if any(part is None for part in parts):
        return None
    found = [part for part in parts if part is not None]
    return Collection(
        kind,
        UNION_SEPARATOR.join(keys),
        " or ".join(part.name for part in found),
        _merged(part.articles for part in found),
        max(part.changed_at for part in found),
    )


def _candidates(catalog: Catalog, base: Collection, selection: Selection) -> Sequence[Article]:
    """The shortest list that holds every article the selection can keep."""
    lists: list[Sequence[Article]] = [base.articles]
    chosen = ((selection.topics, catalog.topics), (selection.providers, catalog.providers))
    for keys, index in chosen:
        if keys:
            lists.append(_merged(index[k].articles for k in sorted(keys) if k in index))
    return min(lists, key=len)


def _in_base(base: Collection) -> Selection:
    """The base collection as a selection, so a narrower candidate list can be checked."""
    if base.kind == ALL:
        return Selection()
    keys = frozenset(base.key.split(UNION_SEPARATOR))
    return Selection(topics=keys) if base.kind == TOPIC else Selection(providers=keys)


def select(catalog: Catalog, base: Collection, selection: Selection) -> Collection:
    """The base collection narrowed by a selection; the base itself when nothing is chosen."""
    if not selection:
        return base
    in_base = _in_base(base)
    articles = tuple(
        article
        for article in _candidates(catalog, base, selection)
        if in_base.matches(article) and selection.matches(article)
    )
    # The collection's change time still counts: an article leaving it changes the feed.
    return Collection(base.kind, base.key, base.name, articles, base.changed_at)

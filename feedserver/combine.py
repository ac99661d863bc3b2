"""Combined feeds: the union of several topics or providers (`/topics/ai+azure.rss`, as
WordPress spells it), and a feed narrowed by the `topic=`, `provider=`, `exclude_topic=` and
`exclude_provider=` parameters. Each is a Collection like any other, so paging, validators
and rendering treat it the same way."""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import ALL, PROVIDER, TOPIC, Catalog, Collection
from .query import Selection

# How a path names several topics or providers at once.
UNION_SEPARATOR = "+"
MAX_UNION = 20


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
        catalog.search.articles_in(_any_of(catalog, kind, keys)),
        max(part.changed_at for part in found),
    )


def _any_of(catalog: Catalog, kind: str, keys: Iterable[str]) -> int:
    """The articles (a bit set of the catalog's search index) in any of these collections."""
    bits = 0
    for key in keys:
        bits |= catalog.search.bits_of((kind, key))
    return bits


def select(catalog: Catalog, base: Collection, selection: Selection) -> Collection:
    """The base collection narrowed by a selection; the base itself when nothing is chosen.
    Worked out on the bit sets of the catalog's search index: it costs the articles it keeps,
    not a test of every article of the base."""
    if not selection:
        return base
    index = catalog.search
    if base.kind == ALL:
        chosen = index.everything()
    else:
        chosen = _any_of(catalog, base.kind, base.key.split(UNION_SEPARATOR))
    if selection.topics:
        chosen &= _any_of(catalog, TOPIC, selection.topics)
    if selection.providers:
        chosen &= _any_of(catalog, PROVIDER, selection.providers)
    chosen &= ~_any_of(catalog, TOPIC, selection.exclude_topics)
    chosen &= ~_any_of(catalog, PROVIDER, selection.exclude_providers)
    # The collection's change time still counts: an article leaving it changes the feed.
    return Collection(base.kind, base.key, base.name, index.articles_in(chosen), base.changed_at)

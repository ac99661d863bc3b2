"""An immutable snapshot of what is served: published articles, newest first, indexed by topic
and provider. A new snapshot replaces the old one by a single reference assignment."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress, takewhile
from operator import not_

from .models import Article, Provider, Topic
from .search import SearchIndex

# What an empty feed reports as its update time: fixed, so it never moves on its own.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ALL = "all"
TOPIC = "topic"
PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one seed file; `fatal` means the file is not served."""

    file: str
    reason: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Collection:
    """The articles of one feed (everything, a topic or a provider), newest first."""

    kind: str
    key: str
    name: str
    articles: tuple[Article, ...]
    # When a file that names this collection last changed (by its mtime), published or not:
    # the feed's content may change without its newest entry changing.
    changed_at: datetime = EPOCH
    # How often each spelling of the name occurs among the members, kept up to date as
    # members come and go so that a change does not recount every member.
    names: Counter[str] = field(default_factory=Counter, compare=False, repr=False)

    @property
    def updated(self) -> datetime:
        """The newest article's date: what the feed reports as its last update."""
        return self.articles[0].published_at if self.articles else EPOCH

    @property
    def last_modified(self) -> datetime:
        """The later of the newest entry's date and the collection's last change."""
        return max(self.updated, self.changed_at)


@dataclass(frozen=True, slots=True)
class Names:
    """The one name each topic and provider is shown by, wherever an article names it (a
    feed's categories, a page's chips, an entry's author): its collection's name, chosen by
    `_choose_name`, rather than the spelling of that one article."""

    topics: Mapping[str, Collection] = field(default_factory=dict)
    providers: Mapping[str, Collection] = field(default_factory=dict)

    def topic(self, topic: Topic) -> str:
        """The topic's display name; the article's own spelling if it is not served."""
        found = self.topics.get(topic.key)
        return found.name if found is not None else topic.name

    def provider(self, provider: Provider) -> str:
        """The provider's display name; the article's own spelling if it is not served."""
        found = self.providers.get(provider.key)
        return found.name if found is not None else provider.name


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything served at one moment; never changed after it is built."""

    everything: Collection
    topics: dict[str, Collection]
    providers: dict[str, Collection]
    problems: tuple[Problem, ...]
    files: int
    scheduled: tuple[Article, ...]  # published, but dated in the future
    # Built on first use and kept with the snapshot (a copy of the snapshot shares it).
    search: SearchIndex = field(init=False, repr=False, compare=False)
    names: Names = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "search", SearchIndex(self.everything.articles, collection_keys))
        object.__setattr__(self, "names", Names(self.topics, self.providers))

    @property
    def next_release(self) -> datetime | None:
        """When the next scheduled article becomes visible, if any is waiting."""
        return min((a.published_at for a in self.scheduled), default=None)

    def collection(self, kind: str, key: str = "") -> Collection | None:
        """The collection of a feed, or None when no such topic or provider is served."""
        if kind == ALL:
            return self.everything
        if kind == TOPIC:
            return self.topics.get(key)
        if kind == PROVIDER:
            return self.providers.get(key)
        return None


def _newest_first(article: Article) -> tuple[float, str]:
    return (-article.published_at.timestamp(), article.url)


def _choose_name(names: Counter[str]) -> str:
    """The display name of a topic or provider: the spelling most of its articles use, ties
    broken by the smallest in code point order (`Microsoft AI` before `microsoft ai`). It
    depends only on which articles are served, not on the order they were read or on earlier
    reloads, so every process, reload and build picks the same one. (Spellings reach here with
    their whitespace collapsed: see seeds.clean_name.)"""
    return min(names.items(), key=lambda item: (-item[1], item[0]))[0]


ChangeTimes = dict[tuple[str, str], datetime]
CollectionKey = tuple[str, str]


def collection_keys(article: Article) -> Iterator[CollectionKey]:
    """Every collection an article belongs to when it is visible."""
    yield (ALL, "")
    for topic in article.topics:
        yield (TOPIC, topic.key)
    if article.provider is not None:
        yield (PROVIDER, article.provider.key)


def _names(articles: Iterable[Article], kind: str, key: str) -> Iterator[str]:
    """The spelling of the collection's name in each of these articles."""
    if kind == PROVIDER:
        return (a.provider.name for a in articles if a.provider is not None)
    return (t.name for a in articles for t in a.topics if t.key == key)


def _without(articles: tuple[Article, ...], departures: list[Article]) -> list[Article]:
    """The articles less the departures (by identity), filtered by C-level iterators: this
    runs over every touched collection's members on every reload."""
    gone = set(map(id, departures))
    return list(compress(articles, map(not_, map(gone.__contains__, map(id, articles)))))


def _revise(
    old: Collection,
    departures: list[Article],
    arrivals: list[Article],
    changed_at: datetime,
    rename: bool,
) -> Collection:
    """The collection without the departures and with the arrivals, still sorted."""
    articles = _without(old.articles, departures) if departures else list(old.articles)
    if len(arrivals) * 16 > len(articles):
        articles += arrivals
        articles.sort(key=_newest_first)
    else:  # few arrivals: binary insertion beats computing every article's sort key
        for article in arrivals:
            bisect.insort(articles, article, key=_newest_first)
    name, names = old.name, old.names
    if rename:
        names = Counter(names)
        names.subtract(_names(departures, old.kind, old.key))
        names.update(_names(arrivals, old.kind, old.key))
        names = +names  # drop the spellings no member uses any more
        if articles:
            name = _choose_name(names)
    return Collection(
        old.kind, old.key, name, tuple(articles), max(old.changed_at, changed_at), names
    )


def _revise_index(
    old: dict[str, Collection],
    kind: str,
    touched: set[CollectionKey],
    departures: dict[CollectionKey, list[Article]],
    arrivals: dict[CollectionKey, list[Article]],
    changes: ChangeTimes,
) -> dict[str, Collection]:
    """The index with only the touched collections rebuilt; empty ones disappear."""
    index = dict(old)
    for touched_kind, key in touched:
        if touched_kind != kind:
            continue
        previous = old.get(key) or Collection(kind, key, "", ())
        revised = _revise(
            previous,
            departures.get((kind, key), []),
            arrivals.get((kind, key), []),
            changes.get((kind, key), EPOCH),
            True,
        )
        if revised.articles:
            index[key] = revised
        else:
            index.pop(key, None)
    if index.keys() == old.keys():
        return index
    return dict(sorted(index.items()))


def _recalled(old: Catalog, now: datetime, gone_ids: set[int]) -> list[Article]:
    """The shown articles dated after `now`: released while the clock was ahead, they are
    withheld again (newest first, so they lead the all-articles collection)."""
    ahead = takewhile(lambda a: a.published_at > now, old.everything.articles)
    return [a for a in ahead if id(a) not in gone_ids]


def _recall_changes(changes: ChangeTimes, recalled: list[Article]) -> ChangeTimes:
    """Date the recall past the newest recalled article: Last-Modified then moves beyond what
    a cache got with it, so revalidating by date alone does not keep it (fail closed)."""
    when = max(a.published_at for a in recalled) + timedelta(seconds=1)
    changes = dict(changes)
    for article in recalled:
        for key in collection_keys(article):
            changes[key] = max(changes.get(key, EPOCH), when)
    return changes


def update_catalog(
    old: Catalog,
    gone: Iterable[Article],
    arrived: Iterable[Article],
    now: datetime,
    problems: Iterable[Problem],
    changes: ChangeTimes,
    files: int,
) -> Catalog:
    """The next snapshot: old without `gone`, with `arrived`, at `now`.

    Embargo is decided again from `now` every time: a scheduled article dated at or before
    it is shown, and a shown one dated after it (the clock went back) is scheduled again.
    Only the collections that an article joins or leaves (or whose files changed, per
    `changes`) are rebuilt; the others are shared with the old snapshot, so a reload costs
    what changed, not what exists. `gone` must hold the old snapshot's own objects.
    """
    gone = list(gone)
    gone_ids = {id(article) for article in gone}
    waiting_ids = {id(article) for article in old.scheduled}
    # Of the gone articles, those the old snapshot shows (the others are in no collection).
    shown = [a for a in gone if a.published and id(a) not in waiting_ids]
    recalled = _recalled(old, now, gone_ids)
    departures: dict[CollectionKey, list[Article]] = defaultdict(list)
    for article in shown + recalled:
        for key in collection_keys(article):
            departures[key].append(article)
    if recalled:
        changes = _recall_changes(changes, recalled)
    arriving = [a for a in arrived if a.published]
    waiting = [a for a in old.scheduled if id(a) not in gone_ids] + recalled
    waiting += [a for a in arriving if a.published_at > now]
    visible = [a for a in arriving if a.published_at <= now]
    visible += [a for a in waiting if a.published_at <= now]
    scheduled = tuple(a for a in waiting if a.published_at > now)
    arrivals: dict[CollectionKey, list[Article]] = defaultdict(list)
    for article in visible:
        for key in collection_keys(article):
            arrivals[key].append(article)
    touched = set(arrivals) | set(changes) | set(departures)
    everything = _revise(
        old.everything,
        departures.get((ALL, ""), []),
        arrivals.get((ALL, ""), []),
        changes.get((ALL, ""), EPOCH),
        False,
    )
    catalog = Catalog(
        everything=everything,
        topics=_revise_index(old.topics, TOPIC, touched, departures, arrivals, changes),
        providers=_revise_index(old.providers, PROVIDER, touched, departures, arrivals, changes),
        problems=tuple(sorted(problems, key=lambda p: (p.file, not p.fatal, p.reason))),
        files=files,
        scheduled=scheduled,
    )
    # The search index follows too: made from the old one's, for what came and went.
    catalog.search.follow(old.search)
    return catalog


def empty_catalog(site_title: str) -> Catalog:
    """A catalog with nothing in it."""
    return Catalog(Collection(ALL, "", site_title, ()), {}, {}, (), 0, ())

"""An immutable snapshot of what is served: published articles, newest first, indexed by topic
and provider. A new snapshot replaces the old one by a single reference assignment."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import Article
from .seeds import ParsedSeed

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

    @property
    def updated(self) -> datetime:
        """The newest article's date: what the feed reports as its last update."""
        return self.articles[0].published_at if self.articles else EPOCH

    @property
    def last_modified(self) -> datetime:
        """The later of the newest entry's date and the collection's last change."""
        return max(self.updated, self.changed_at)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything served at one moment; never changed after it is built."""

    everything: Collection
    topics: dict[str, Collection]
    providers: dict[str, Collection]
    problems: tuple[Problem, ...]
    files: int
    built_at: datetime
    next_release: datetime | None  # when a scheduled article next becomes visible

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
    """The most used spelling of a name, ties broken alphabetically, so the choice is stable."""
    return min(names.items(), key=lambda item: (-item[1], item[0]))[0]


ChangeTimes = dict[tuple[str, str], datetime]


def collection_keys(article: Article) -> Iterator[tuple[str, str]]:
    """Every collection an article belongs to when it is visible."""
    yield (ALL, "")
    for topic in article.topics:
        yield (TOPIC, topic.key)
    if article.provider is not None:
        yield (PROVIDER, article.provider.key)


def note_change(changes: ChangeTimes, article: Article, when: datetime) -> None:
    """Record that the collections of an article changed at `when` (keeping the latest)."""
    for key in collection_keys(article):
        if changes.get(key, EPOCH) < when:
            changes[key] = when


def _change_times(seeds: Iterable[ParsedSeed], removals: ChangeTimes) -> ChangeTimes:
    changes = dict(removals)
    for seed in seeds:
        if seed.article is not None:
            note_change(
                changes, seed.article, datetime.fromtimestamp(seed.file.mtime_ns / 1e9, UTC)
            )
    return changes


def _index(articles: Iterable[Article], kind: str, changes: ChangeTimes) -> dict[str, Collection]:
    members: dict[str, list[Article]] = defaultdict(list)
    names: dict[str, Counter[str]] = defaultdict(Counter)
    for article in articles:
        if kind == TOPIC:
            for topic in article.topics:
                members[topic.key].append(article)
                names[topic.key][topic.name] += 1
        elif article.provider is not None:
            members[article.provider.key].append(article)
            names[article.provider.key][article.provider.name] += 1
    return {
        key: Collection(
            kind,
            key,
            _choose_name(names[key]),
            tuple(members[key]),
            changes.get((kind, key), EPOCH),
        )
        for key in sorted(members)
    }


def _deduplicate(seeds: Iterable[ParsedSeed]) -> tuple[list[ParsedSeed], list[Problem]]:
    """One article per webUrl: the most recently modified file wins, the others are reported."""
    winners: dict[str, ParsedSeed] = {}
    problems: list[Problem] = []
    ordered = sorted(
        (seed for seed in seeds if seed.article is not None),
        key=lambda seed: (-seed.file.mtime_ns, seed.file.path),
    )
    for seed in ordered:
        assert seed.article is not None
        winner = winners.setdefault(seed.article.url, seed)
        if winner is not seed:
            problems.append(
                Problem(
                    seed.file.path,
                    f"duplicate webUrl {seed.article.url}; {winner.file.path} is served instead",
                    False,
                )
            )
    return list(winners.values()), problems


def build_catalog(
    seeds: Iterable[ParsedSeed],
    now: datetime,
    site_title: str,
    extra_problems: Iterable[Problem] = (),
    removals: ChangeTimes | None = None,
) -> Catalog:
    """Build the snapshot served at `now` from every parsed seed file.

    `removals` holds when collections last lost a deleted file, which no seed shows.
    """
    seeds = list(seeds)
    problems = list(extra_problems)
    problems += [
        Problem(seed.file.path, seed.error, True) for seed in seeds if seed.error is not None
    ]
    problems += [
        Problem(seed.file.path, warning, False) for seed in seeds for warning in seed.warnings
    ]
    winners, duplicates = _deduplicate(seeds)
    problems += duplicates
    changes = _change_times(winners, removals or {})
    published = [s.article for s in winners if s.article is not None and s.article.published]
    visible = sorted((a for a in published if a.published_at <= now), key=_newest_first)
    scheduled = [a.published_at for a in published if a.published_at > now]
    problems.sort(key=lambda problem: (problem.file, not problem.fatal, problem.reason))
    return Catalog(
        everything=Collection(ALL, "", site_title, tuple(visible), changes.get((ALL, ""), EPOCH)),
        topics=_index(visible, TOPIC, changes),
        providers=_index(visible, PROVIDER, changes),
        problems=tuple(problems),
        files=len(seeds),
        built_at=now,
        next_release=min(scheduled) if scheduled else None,
    )

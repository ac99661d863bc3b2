"""The figures the stats database gives back: each feed's day, and the site's day, in which a
reader of several feeds counts once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FeedDay:
    """One feed on one day."""

    day: str
    feed: str
    polls: int
    limited: int
    direct: int
    aggregators: dict[str, int]  # aggregator -> subscribers (its subscriptions added up)

    @property
    def subscribers(self) -> int:
        """Aggregators' reported subscribers plus direct pollers."""
        return self.direct + sum(self.aggregators.values())


def latest_by_feed(days: Iterable[FeedDay]) -> dict[str, FeedDay]:
    """Each feed's figures of the newest day it has."""
    latest: dict[str, FeedDay] = {}
    for feed_day in days:
        if feed_day.feed not in latest or latest[feed_day.feed].day < feed_day.day:
            latest[feed_day.feed] = feed_day
    return latest


@dataclass(frozen=True, slots=True)
class SiteDay:
    """All feeds together on one day, each reader counted once."""

    day: str
    polls: int
    limited: int
    direct: int  # distinct direct pollers of any feed
    aggregators: dict[str, int]  # aggregator -> its largest report for one feed

    @property
    def subscribers(self) -> int:
        """Aggregators' subscribers plus direct readers, none counted once per feed."""
        return self.direct + sum(self.aggregators.values())


def site_days(days: Iterable[FeedDay], direct_readers: dict[str, int]) -> list[SiteDay]:
    """The site's figures per day, oldest first. Polls add up across feeds; readers do not:
    direct readers are the day's distinct pollers (`direct_readers`; for a day without that
    count, the largest feed's, a lower bound), and an aggregator counts with the largest
    number it reported for one feed, since its readers of several feeds are mostly the same
    people and it does not say which."""
    by_day: dict[str, list[FeedDay]] = {}
    for feed_day in days:
        by_day.setdefault(feed_day.day, []).append(feed_day)
    result = []
    for day, feed_days in sorted(by_day.items()):
        aggregators: dict[str, int] = {}
        for feed_day in feed_days:
            for name, count in feed_day.aggregators.items():
                aggregators[name] = max(aggregators.get(name, 0), count)
        fallback = max(d.direct for d in feed_days)
        result.append(
            SiteDay(
                day,
                sum(d.polls for d in feed_days),
                sum(d.limited for d in feed_days),
                direct_readers.get(day, fallback),
                dict(sorted(aggregators.items())),
            )
        )
    return result

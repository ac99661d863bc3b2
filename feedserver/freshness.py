"""How often a feed should be polled, from how often it actually publishes: the median gap
between its newest articles, so that readers poll a weekly topic less than a busy one."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .models import Article

# How many of a feed's newest articles its publishing rhythm is measured on.
RECENT_ARTICLES = 20
DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600


@dataclass(frozen=True, slots=True)
class Freshness:
    """A feed's polling hints: seconds between polls, and the same as RSS ttl and sy:*."""

    seconds: int

    @property
    def ttl_minutes(self) -> int:
        """RSS `ttl`: whole minutes, rounded up, at least one."""
        return max(1, -(-self.seconds // 60))

    @property
    def update_period(self) -> str:
        """RSS `sy:updatePeriod`: hourly below a day, else daily."""
        return "hourly" if self.seconds < HOUR_SECONDS else "daily"

    @property
    def update_frequency(self) -> int:
        """RSS `sy:updateFrequency`: updates per period, at least one."""
        period = HOUR_SECONDS if self.update_period == "hourly" else DAY_SECONDS
        return max(1, period // self.seconds)


def poll_interval(articles: Sequence[Article], minimum: int, maximum: int = DAY_SECONDS) -> int:
    """Seconds between polls: the median gap between the newest articles (newest first),
    clamped to minimum … maximum; the maximum when there are fewer than two articles."""
    recent = articles[:RECENT_ARTICLES]
    if len(recent) < 2:
        return max(minimum, maximum)
    gaps = [
        (newer.published_at - older.published_at).total_seconds()
        for newer, older in itertools.pairwise(recent)
    ]
    return int(min(max(statistics.median(gaps), minimum), max(minimum, maximum)))


def freshness(articles: Sequence[Article], reload_interval: int) -> Freshness:
    """The polling hints of a feed whose articles are these, newest first."""
    return Freshness(poll_interval(articles, reload_interval))

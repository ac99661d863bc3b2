"""Who polls a feed: aggregators that report their subscriber counts in the User-Agent, and
which feed (all formats of one topic or provider together) a path belongs to.

Hosted readers fetch a feed once for all their users and say how many there are, each in a
form of its own (the strings below are the documented ones, as each service sends them):

- Feedly: `Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; )`
- Inoreader: `Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher;
  12 subscribers; )`
- NewsBlur: `NewsBlur Feed Fetcher - 5 subscribers - http://www.newsblur.com/site/1234/name (...)`
- Feedbin: `Feedbin feed-id:1373711 - 42 subscribers`
- The Old Reader: `Mozilla/5.0 (compatible; theoldreader.com; 4 subscribers; feed-id=123)`
- BazQux: `Mozilla/5.0 (compatible; BazQux/2.4; +https://bazqux.com/fetcher; 3 subscribers)`
- Bloglovin: `Bloglovin/1.0 (rv:1; +https://www.bloglovin.com; 2 subscribers)`
- Netvibes: `Netvibes (crawler; http://www.netvibes.com; 7 subscribers; feedID: 4242)`
- Feedspot: `Feedspot/1.0 (+https://www.feedspot.com/fs/fetcher; like FeedFetcher-Google; 9
  subscribers)`
- Google Feedfetcher: `Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 1
  subscribers; feed-id=1368044458445856733)`

Any other client that says `N subscribers` is counted as an aggregator under the first
product name in its User-Agent. Everything else is a direct poller (a reader on someone's
own machine or server), counted by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .combine import MAX_UNION, UNION_SEPARATOR
from .urls import ALL_FEEDS, FEED_EXTENSIONS, HOME, KIND_PATHS

if TYPE_CHECKING:
    from .catalog import Catalog

# Only this much of a User-Agent is read: the counts come early, and a client chooses the length.
MAX_USER_AGENT = 512
# The most one claim counts: more than any one feed of a news site has, far less than the
# 100,000,000 a made-up User-Agent claimed (statsdb also holds each to its history).
MAX_SUBSCRIBERS = 1_000_000

# (name, pattern that identifies it): the first match names the aggregator.
AGGREGATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("Feedly", r"\bFeedly/"),
        ("Inoreader", r"\bInoreader/"),
        ("NewsBlur", r"^NewsBlur Feed Fetcher\b"),
        ("Feedbin", r"^Feedbin\b"),
        ("The Old Reader", r"\btheoldreader\.com\b"),
        ("BazQux", r"\bBazQux/"),
        ("Bloglovin", r"\bBloglovin/"),
        ("Netvibes", r"^Netvibes\b"),
        ("Feedspot", r"\bFeedspot/"),
        ("Google Feedfetcher", r"^Feedfetcher-Google\b"),
    )
)
_SUBSCRIBERS = re.compile(r"\b(\d{1,12}) (?:subscribers?|readers?)\b", re.IGNORECASE)
# feed-id=123, feed-id:123, feedID: 123, and NewsBlur's /site/123/.
_FEED_ID = re.compile(r"\bfeed-?id\s*[=:]\s*([A-Za-z0-9_-]{1,64})|/site/(\d{1,20})/", re.IGNORECASE)
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,40})/\d")
_BROWSER_TOKENS = frozenset({"Mozilla", "AppleWebKit", "Chrome", "Safari", "Gecko", "Version"})


@dataclass(frozen=True, slots=True)
class Poller:
    """What a User-Agent says of its sender: an aggregator with a subscriber count, or not."""

    aggregator: str  # "" for a direct poller
    subscribers: int
    feed_id: str  # the aggregator's own id of this subscription, "" when it sends none

    @property
    def is_aggregator(self) -> bool:
        """Whether the poller reports subscribers on behalf of others."""
        return bool(self.aggregator)


DIRECT = Poller("", 0, "")


@lru_cache(maxsize=4096)
def identify(user_agent: str) -> Poller:
    """The aggregator and subscriber count a User-Agent reports, or DIRECT."""
    text = user_agent[:MAX_USER_AGENT]
    count = _SUBSCRIBERS.search(text)
    if count is None:
        return DIRECT
    name = next((name for name, pattern in AGGREGATORS if pattern.search(text)), None)
    if name is None:
        products = [p for p in _PRODUCT.findall(text) if p not in _BROWSER_TOKENS]
        name = products[0] if products else text.split(" ", 1)[0][:40] or "unknown"
    found = _FEED_ID.search(text)
    feed_id = (found.group(1) or found.group(2)) if found else ""
    return Poller(name, min(int(count.group(1)), MAX_SUBSCRIBERS), feed_id)


ALL_FEED = "all"
_PREFIXES = tuple((f"/{folder}/", kind) for kind, folder in KIND_PATHS.items())
_SUFFIXES = tuple(f".{extension}" for extension in FEED_EXTENSIONS)


def feed_of(path: str) -> str | None:
    """The feed a path polls (`all`, `topic:<slug>`, `provider:<key>`) whatever its format,
    the HTML page included; None for every other path."""
    if path in (HOME, ALL_FEEDS) or (path.startswith(f"{ALL_FEEDS}.") and path.endswith(_SUFFIXES)):
        return ALL_FEED
    for prefix, kind in _PREFIXES:
        if path.startswith(prefix):
            key = path[len(prefix) :]
            for suffix in _SUFFIXES:
                if key.endswith(suffix):
                    key = key[: -len(suffix)]
                    break
            if key and "/" not in key:
                return f"{kind}:{key}"
    return None


def is_served(catalog: Catalog, feed: str) -> bool:
    """Whether a feed key names a feed this catalog serves under that very spelling: `all`,
    a topic or provider, or a union of them in canonical (sorted, each once) order."""
    if feed == ALL_FEED:
        return True
    kind, _, key = feed.partition(":")
    parts = key.split(UNION_SEPARATOR)
    if parts != sorted(set(parts)) or len(parts) > MAX_UNION:
        return False
    return all(catalog.collection(kind, part) is not None for part in parts)


def is_feed_document(path: str) -> bool:
    """Whether a path is a feed in a reader's format (not its HTML page)."""
    return path.endswith(_SUFFIXES) and feed_of(path) is not None

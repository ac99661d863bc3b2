"""The audience store: polls and subscribers per feed and day, in SQLite shared by every
worker of a server (WAL mode, one writer at a time, each worker writing in batches).

No address is ever written. A direct poller is kept, for the current day only, as a keyed
hash of its address and User-Agent, with a random key made for that day; when the day is
over its pollers are folded into a count and the day's hashes and key are deleted, so
nothing links a poller across days. Aggregators keep the latest count they reported.

The site's own daily figures count each reader once however many feeds it polls: the direct
pollers of all feeds together are the distinct hashes of the day (one key per day, so one
poller has one hash in every feed), kept as a count in `site_days` when the day closes; each
aggregator counts with the largest number it reported for any one feed (see `site_days`).

Everything a client can make up is bounded (README, "Audience and monitoring"): a day stores
at most MAX_FEEDS_PER_DAY feeds, unions (`a+b`, one row per canonical spelling) at most
MAX_UNIONS_PER_DAY of them, and the rest of a day's polls add up under the feed `other`; a
feed keeps at most MAX_AGGREGATORS_PER_FEED aggregators a day (the known ones first, then
the largest), each with at most MAX_SUBSCRIPTIONS subscriptions; and an aggregator's count
of a feed is held to its own history (`held_to_history`)."""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from .audience import AGGREGATORS
from .own_files import create_own_file, foreign_file
from .stats_figures import FeedDay

SCHEMA_VERSION = "1"
# A hostile client can invent User-Agents: past this many distinct pollers of one day,
# more are not stored (the count then says "at least").
MAX_POLLERS_PER_DAY = 1_000_000
# Feeds are only counted when they are served, but unions of served topics are many
# (100 topics make 4,950 pairs): past these, a day's further feeds count as OTHER_FEED.
MAX_FEEDS_PER_DAY = 2_000
MAX_UNIONS_PER_DAY = 200
OTHER_FEED = "other"
UNION = "+"
# Any client can claim to be an aggregator: per feed and day, this many are kept (known
# aggregators first, then the largest counts), each with this many subscriptions.
MAX_AGGREGATORS_PER_FEED = 20
MAX_SUBSCRIPTIONS = 50
KNOWN_AGGREGATORS = frozenset(name for name, _ in AGGREGATORS)
# An aggregator's count of a feed may move by this factor from one day to the next; one
# without a previous day starts at this many subscribers at most.
HISTORY_FACTOR = 10
NEW_AGGREGATOR_MAX = 1_000
# Short: a write that finds the database locked gives up soon and its counts wait, kept,
# for the next flush (it runs off the event loop, see blocking.py, so serving never waits).
BUSY_TIMEOUT_SECONDS = 0.5
# At start-up, before serving, workers starting together may wait on each other longer.
START_BUSY_TIMEOUT_SECONDS = 5.0
# A pending batch keeps at most this many direct pollers and aggregator reports: a database
# that stays locked or full for hours must not grow a worker's memory without bound.
MAX_PENDING_POLLERS = 50_000
MAX_PENDING_REPORTS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS day_keys (day TEXT PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS polls (
    day TEXT NOT NULL, feed TEXT NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0, limited INTEGER NOT NULL DEFAULT 0,
    direct INTEGER,  -- NULL while the day is open: counted from `pollers`
    PRIMARY KEY (day, feed)
);
CREATE TABLE IF NOT EXISTS pollers (
    day TEXT NOT NULL, feed TEXT NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (day, feed, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aggregators (
    day TEXT NOT NULL, feed TEXT NOT NULL, aggregator TEXT NOT NULL, subscription TEXT NOT NULL,
    subscribers INTEGER NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (day, feed, aggregator, subscription)
);
-- Distinct direct pollers of any feed, per closed day (an open day counts `pollers`).
-- Added to schema 1 in place: days closed before it existed have no row.
CREATE TABLE IF NOT EXISTS site_days (day TEXT PRIMARY KEY, direct INTEGER NOT NULL);
-- Each aggregator's count of a feed per day, its subscriptions added up and held to its
-- history (held_to_history); what every page shows. Added to schema 1 in place, filled
-- once from `aggregators` (meta key 'aggregator_days').
CREATE TABLE IF NOT EXISTS aggregator_days (
    day TEXT NOT NULL, feed TEXT NOT NULL, aggregator TEXT NOT NULL,
    subscribers INTEGER NOT NULL,
    PRIMARY KEY (day, feed, aggregator)
);
CREATE INDEX IF NOT EXISTS aggregator_history ON aggregator_days (feed, aggregator, day);
"""


class StatsError(Exception):
    """The stats database cannot be opened, read or written; the message says why."""


class StatsRefused(StatsError):
    """The stats database is a symlink, or a file of another user: never opened."""


@dataclass
class Batch:
    """What one worker saw since its last write, for one day."""

    polls: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    # feed -> the (address, User-Agent) of each direct poller: hashed before it is stored.
    direct: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    # (feed, aggregator, subscription) -> (subscribers, when reported)
    reports: dict[tuple[str, str, str], tuple[int, float]] = field(default_factory=dict)

    pollers: int = 0  # direct pollers held, added by note_direct (bounded)

    def __bool__(self) -> bool:
        return bool(self.polls or self.limited or self.reports)

    def note_direct(self, feed: str, poller: tuple[str, str]) -> None:
        """Hold one direct poller of a feed, unless MAX_PENDING_POLLERS are held already."""
        held = self.direct.setdefault(feed, set())
        if poller not in held and self.pollers < MAX_PENDING_POLLERS:
            held.add(poller)
            self.pollers += 1

    def note_report(self, key: tuple[str, str, str], subscribers: int, seen: float) -> None:
        """Hold an aggregator's latest report, unless MAX_PENDING_REPORTS are held already."""
        if key in self.reports or len(self.reports) < MAX_PENDING_REPORTS:
            self.reports[key] = (subscribers, seen)

    def merge(self, other: Batch) -> None:
        """Add another batch of the same day (one not written yet) to this one, bounded."""
        self.polls.update(other.polls)
        self.limited.update(other.limited)
        for feed, pollers in other.direct.items():
            for poller in pollers:
                self.note_direct(feed, poller)
        for key, (subscribers, seen) in other.reports.items():
            if key not in self.reports or self.reports[key][1] <= seen:
                self.note_report(key, subscribers, seen)

    def feeds(self) -> set[str]:
        """Every feed this batch counts something for."""
        reported = {feed for feed, _, _ in self.reports}
        return self.polls.keys() | self.limited.keys() | self.direct.keys() | reported

    def renamed(self, names: dict[str, str]) -> Batch:
        """The same counts with feeds renamed (those past a day's bounds to OTHER_FEED)."""
        if all(names.get(feed, feed) == feed for feed in self.feeds()):
            return self
        result = Batch()
        for feed, count in self.polls.items():
            result.polls[names.get(feed, feed)] += count
        for feed, count in self.limited.items():
            result.limited[names.get(feed, feed)] += count
        for feed, pollers in self.direct.items():
            result.direct.setdefault(names.get(feed, feed), set()).update(pollers)
        for (feed, aggregator, subscription), report in self.reports.items():
            result.reports[(names.get(feed, feed), aggregator, subscription)] = report
        return result


def held_to_history(claimed: int, previous: int | None) -> int:
    """An aggregator's count of a feed today, from what it claims and its own previous day:
    within HISTORY_FACTOR of that day's figure (growing to NEW_AGGREGATOR_MAX at least); an
    aggregator without a previous day starts at NEW_AGGREGATOR_MAX at most. So `0
    subscribers` sent in Feedly's name cannot wipe Feedly's 5,000 (it is held at 500), and a
    made-up aggregator cannot claim millions at once."""
    if previous is None:
        return min(claimed, NEW_AGGREGATOR_MAX)
    highest = max(previous * HISTORY_FACTOR, NEW_AGGREGATOR_MAX)
    return max(previous // HISTORY_FACTOR, min(claimed, highest))


def is_union(feed: str) -> bool:
    """Whether a feed key names a union of topics or providers (`topic:ai+azure`)."""
    return UNION in feed


def _poller_hash(key: bytes, address: str, user_agent: str) -> bytes:
    text = f"{address}\n{user_agent}".encode("utf-8", "replace")
    return hashlib.blake2b(text, key=key, digest_size=16).digest()


class StatsDB:
    """Reads and writes the audience tables of one SQLite file."""

    def __init__(self, path: str | Path, retention_days: int) -> None:
        self.path = os.path.abspath(path)  # the working directory may change later
        self.retention_days = retention_days

    @contextmanager
    def _connect(self, timeout: float = BUSY_TIMEOUT_SECONDS) -> Iterator[sqlite3.Connection]:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Made first (never through a symlink), then checked: a symlink or another
            # user's file put there before is refused, not opened.
            create_own_file(self.path)
            foreign = foreign_file(self.path)
            if foreign is not None:
                raise StatsRefused(f"stats database refused: {foreign}")
            connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StatsError(f"stats database {self.path} cannot be opened: {error}") from None
        with closing(connection):
            try:
                yield connection
            except sqlite3.Error as error:
                raise StatsError(f"stats database {self.path}: {error}") from None

    def initialize(self) -> None:
        """Create the tables (WAL mode) unless they exist; raises StatsError when it cannot."""
        with self._connect(START_BUSY_TIMEOUT_SECONDS) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None or found[0] != SCHEMA_VERSION:
                raise StatsError(f"stats database {self.path} has another schema version")
            self._fill_aggregator_days(db)

    def _fill_aggregator_days(self, db: sqlite3.Connection) -> None:
        """Once, for a database of an earlier version: each aggregator's figures per day."""
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM meta WHERE key = 'aggregator_days'").fetchone() is None:
                db.execute(
                    "INSERT OR IGNORE INTO aggregator_days "
                    "SELECT day, feed, aggregator, sum(subscribers) FROM aggregators "
                    "GROUP BY day, feed, aggregator"
                )
                db.execute("INSERT INTO meta (key, value) VALUES ('aggregator_days', '1')")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def write(self, day: date, batch: Batch) -> None:
        """Add one batch of one day, in one transaction; closes days that are over."""
        today = day.isoformat()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                self._close_past_days(db, today)
                key = self._day_key(db, today)
                batch = batch.renamed(self._admitted(db, today, batch.feeds()))
                for feed in batch.feeds():
                    db.execute(
                        "INSERT INTO polls (day, feed, polls, limited) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (day, feed) DO UPDATE SET "
                        "polls = polls + excluded.polls, limited = limited + excluded.limited",
                        (today, feed, batch.polls[feed], batch.limited[feed]),
                    )
                self._add_pollers(db, today, key, batch.direct)
                self._add_reports(db, today, batch.reports)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _admitted(self, db: sqlite3.Connection, today: str, feeds: set[str]) -> dict[str, str]:
        """Each feed's name in today's rows: itself, or OTHER_FEED once the day holds
        MAX_FEEDS_PER_DAY feeds (MAX_UNIONS_PER_DAY unions); first come, first kept."""
        stored = {row[0] for row in db.execute("SELECT feed FROM polls WHERE day = ?", (today,))}
        unions = sum(1 for feed in stored if is_union(feed))
        names = {}
        # Single feeds first: only the catalog makes them, while unions are many.
        for feed in sorted(feeds - stored, key=lambda f: (is_union(f), f)):
            full = len(stored) >= MAX_FEEDS_PER_DAY or (
                is_union(feed) and unions >= MAX_UNIONS_PER_DAY
            )
            if full and feed != OTHER_FEED:
                names[feed] = OTHER_FEED
                continue
            stored.add(feed)
            unions += is_union(feed)
        return names

    def _add_reports(
        self,
        db: sqlite3.Connection,
        today: str,
        reports: dict[tuple[str, str, str], tuple[int, float]],
    ) -> None:
        """Store aggregators' latest reports, then each one's count of its feed, held to its
        history; keep MAX_AGGREGATORS_PER_FEED per feed (known first, then the largest)."""
        touched: set[tuple[str, str]] = set()
        for (feed, aggregator, subscription), (count, seen) in reports.items():
            known = db.execute(
                "SELECT count(*), sum(subscription = ?) FROM aggregators "
                "WHERE day = ? AND feed = ? AND aggregator = ?",
                (subscription, today, feed, aggregator),
            ).fetchone()
            if not known[1] and known[0] >= MAX_SUBSCRIPTIONS:
                continue
            db.execute(
                "INSERT INTO aggregators VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (day, feed, aggregator, subscription) DO UPDATE SET "
                "subscribers = excluded.subscribers, seen = excluded.seen "
                "WHERE excluded.seen >= aggregators.seen",
                (today, feed, aggregator, subscription, count, seen),
            )
            touched.add((feed, aggregator))
        for feed, aggregator in touched:
            claimed = db.execute(
                "SELECT sum(subscribers) FROM aggregators "
                "WHERE day = ? AND feed = ? AND aggregator = ?",
                (today, feed, aggregator),
            ).fetchone()[0]
            previous = db.execute(
                "SELECT subscribers FROM aggregator_days WHERE feed = ? AND aggregator = ? "
                "AND day < ? ORDER BY day DESC LIMIT 1",
                (feed, aggregator, today),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO aggregator_days VALUES (?, ?, ?, ?)",
                (today, feed, aggregator, held_to_history(claimed, previous and previous[0])),
            )
        for feed in {feed for feed, _ in touched}:
            ranked = sorted(
                db.execute(
                    "SELECT aggregator, subscribers FROM aggregator_days "
                    "WHERE day = ? AND feed = ?",
                    (today, feed),
                ),
                key=lambda row: (row[0] not in KNOWN_AGGREGATORS, -row[1], row[0]),
            )
            for aggregator, _ in ranked[MAX_AGGREGATORS_PER_FEED:]:
                for table in ("aggregators", "aggregator_days"):
                    db.execute(
                        f"DELETE FROM {table} WHERE day = ? AND feed = ? AND aggregator = ?",
                        (today, feed, aggregator),
                    )

    def _day_key(self, db: sqlite3.Connection, today: str) -> bytes:
        db.execute(
            "INSERT OR IGNORE INTO day_keys (day, key) VALUES (?, ?)",
            (today, secrets.token_bytes(32)),
        )
        row = db.execute("SELECT key FROM day_keys WHERE day = ?", (today,)).fetchone()
        return bytes(row[0])

    def _add_pollers(
        self,
        db: sqlite3.Connection,
        today: str,
        key: bytes,
        direct: dict[str, set[tuple[str, str]]],
    ) -> None:
        if not direct:
            return
        stored = db.execute("SELECT count(*) FROM pollers WHERE day = ?", (today,)).fetchone()[0]
        room = MAX_POLLERS_PER_DAY - stored
        rows = [
            (today, feed, _poller_hash(key, address, agent))
            for feed, pollers in direct.items()
            for address, agent in pollers
        ]
        db.executemany("INSERT OR IGNORE INTO pollers VALUES (?, ?, ?)", rows[: max(0, room)])

    def _close_past_days(self, db: sqlite3.Connection, today: str) -> None:
        """Fold finished days' pollers into counts, forget their keys, drop expired days."""
        open_days = [
            row[0] for row in db.execute("SELECT day FROM day_keys WHERE day < ?", (today,))
        ]
        for day in open_days:
            db.execute(
                "UPDATE polls SET direct = (SELECT count(*) FROM pollers "
                "WHERE pollers.day = polls.day AND pollers.feed = polls.feed) WHERE day = ?",
                (day,),
            )
            db.execute(
                "INSERT OR REPLACE INTO site_days (day, direct) "
                "SELECT ?, count(DISTINCT hash) FROM pollers WHERE day = ?",
                (day, day),
            )
            db.execute("DELETE FROM pollers WHERE day = ?", (day,))
            db.execute("DELETE FROM day_keys WHERE day = ?", (day,))
        cutoff = (date.fromisoformat(today) - timedelta(days=self.retention_days)).isoformat()
        for table in (
            "polls",
            "aggregators",
            "aggregator_days",
            "pollers",
            "day_keys",
            "site_days",
        ):
            db.execute(f"DELETE FROM {table} WHERE day <= ?", (cutoff,))

    def read(self, since: date) -> list[FeedDay]:
        """Every feed's figures for each day from `since` on, oldest day first."""
        first = since.isoformat()
        with self._connect() as db:
            polls = db.execute(
                "SELECT day, feed, polls, limited, direct FROM polls WHERE day >= ?", (first,)
            ).fetchall()
            open_counts = {
                (day, feed): count
                for day, feed, count in db.execute(
                    "SELECT day, feed, count(*) FROM pollers WHERE day >= ? GROUP BY day, feed",
                    (first,),
                )
            }
            aggregators: dict[tuple[str, str], Counter[str]] = {}
            for day, feed, name, subscribers in db.execute(
                "SELECT day, feed, aggregator, subscribers FROM aggregator_days WHERE day >= ?",
                (first,),
            ):
                aggregators.setdefault((day, feed), Counter())[name] += subscribers
        days = []
        seen = set()
        for day, feed, count, limited, direct in polls:
            seen.add((day, feed))
            direct_count = direct if direct is not None else open_counts.get((day, feed), 0)
            days.append(
                FeedDay(
                    day, feed, count, limited, direct_count, dict(aggregators.get((day, feed), {}))
                )
            )
        for (day, feed), names in aggregators.items():
            if (day, feed) not in seen:
                days.append(FeedDay(day, feed, 0, 0, 0, dict(names)))
        return sorted(days, key=lambda d: (d.day, d.feed))

    def read_direct_readers(self, since: date) -> dict[str, int]:
        """Each day's distinct direct pollers of any feed, from `since` on (a day closed
        before this count was kept is missing)."""
        first = since.isoformat()
        with self._connect() as db:
            closed = db.execute("SELECT day, direct FROM site_days WHERE day >= ?", (first,))
            counts = {day: direct for day, direct in closed}
            open_days = db.execute(
                "SELECT day, count(DISTINCT hash) FROM pollers WHERE day >= ? GROUP BY day",
                (first,),
            )
            counts.update({day: direct for day, direct in open_days})
        return counts

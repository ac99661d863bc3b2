"""The token buckets of polite polling (pure Python, a clock of our own), the table they live
in, and what belongs to one server (its table and its default stats database)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver import server_state
from feedserver.gunicorn_hooks import gunicorn_bind
from feedserver.limiter import SharedTable, TokenBuckets, retry_after
from feedserver.politeness import BURST, polite_limiter
from feedserver.settings import SETTINGS_BY_NAME


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _buckets(clock: Clock, interval: float = 60, burst: int = BURST) -> TokenBuckets:
    return TokenBuckets(SharedTable(1024), interval, burst, clock)


def test_a_burst_goes_through_then_one_poll_per_interval(clock: Clock) -> None:
    buckets = _buckets(clock)
    assert [buckets.take(b"curl") for _ in range(BURST)] == [0.0] * BURST
    wait = buckets.take(b"curl")
    assert 0 < wait <= 60
    clock.now += wait  # the bucket holds one poll again, exactly when it said
    assert buckets.take(b"curl") == 0.0
    assert buckets.take(b"curl") > 0


def test_the_wait_is_never_longer_than_the_interval(clock: Clock) -> None:
    buckets = _buckets(clock, interval=60)
    waits = []
    for _ in range(200):  # twenty polls a second for ten seconds
        waits.append(buckets.take(b"flood"))
        clock.now += 0.05
    refused = [wait for wait in waits if wait > 0]
    assert waits[:BURST] == [0.0] * BURST
    assert len(refused) == 200 - BURST
    assert all(0 < wait <= 60 for wait in refused)
    assert retry_after(max(refused), 60) <= 60


def test_polling_at_the_interval_is_never_refused(clock: Clock) -> None:
    buckets = _buckets(clock, interval=60)
    for _ in range(100):
        assert buckets.take(b"newsboat") == 0.0
        clock.now += 60


def test_polling_a_little_faster_than_the_interval_is_refused_in_the_end(clock: Clock) -> None:
    buckets = _buckets(clock, interval=60)
    statuses = []
    for _ in range(30):
        statuses.append(buckets.take(b"eager") == 0.0)
        clock.now += 40
    # Each poll 20 s early: the burst is spent after a dozen polls; from then on two polls
    # of three go through (one per 60 s), the third is told to wait.
    assert all(statuses[:13]) and not statuses[13]
    assert 4 <= statuses.count(False) <= 7


def test_a_pause_refills_the_bucket_to_its_burst_only(clock: Clock) -> None:
    buckets = _buckets(clock, interval=10)
    clock.now += 10_000  # a long pause earns no more than a full bucket
    assert [buckets.take(b"k") for _ in range(BURST)] == [0.0] * BURST
    assert buckets.take(b"k") > 0


def test_keys_have_buckets_of_their_own(clock: Clock) -> None:
    buckets = _buckets(clock)
    for _ in range(BURST):
        buckets.take(b"a")
    assert buckets.take(b"a") > 0
    assert buckets.take(b"b") == 0.0


def test_a_lost_slot_only_ever_lets_a_request_through(clock: Clock) -> None:
    buckets = TokenBuckets(SharedTable(1), 60, BURST, clock)  # every key in one slot
    for _ in range(BURST):
        buckets.take(b"a")
    assert buckets.take(b"a") > 0
    assert buckets.take(b"b") == 0.0  # b takes the slot: a is forgotten...
    assert buckets.take(b"a") == 0.0  # ... and let through, never refused for b's polls


def test_a_torn_or_foreign_slot_reads_as_empty(clock: Clock) -> None:
    table = SharedTable(1)
    table.put(b"a", 123_456)
    assert table.get(b"a") == 123_456
    table._map[0:4] = b"\xff\xff\xff\xff"  # half of another write
    assert table.get(b"a") is None
    table.put(b"a", 10**15)  # far in the future: no request could have left it there
    assert TokenBuckets(table, 60, BURST, clock).take(b"a") == 0.0


def test_the_table_is_shared_with_processes_forked_after_it(clock: Clock) -> None:
    table = SharedTable(1024)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        buckets = TokenBuckets(table, 60, BURST, clock)
        code = 0 if all(buckets.take(b"shared") == 0.0 for _ in range(BURST)) else 1
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert TokenBuckets(table, 60, BURST, clock).take(b"shared") > 0


def test_retry_after_is_whole_seconds_within_bounds() -> None:
    assert retry_after(0.001, 60) == 1
    assert retry_after(59.2, 60) == 60
    assert retry_after(83_495, 60) == 60
    assert retry_after(3, 1) == 1


def test_bad_buckets_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(SharedTable(1), 0, BURST)
    with pytest.raises(ValueError):
        TokenBuckets(SharedTable(1), 60, 0)


def test_polite_polling_refills_at_the_reload_interval(clock: Clock) -> None:
    buckets = polite_limiter(SharedTable(16), 60, clock)
    assert (buckets.interval, buckets.burst) == (60, BURST)


@pytest.fixture
def no_master() -> Iterator[None]:
    server_state.forget()
    yield
    server_state.forget()


@pytest.mark.usefixtures("no_master")
def test_the_default_stats_database_is_named_after_the_address_served() -> None:
    assert server_state.stats_db_path("auto") == os.path.join("var", "stats.sqlite3")
    assert server_state.stats_db_path("/srv/shared.sqlite3") == "/srv/shared.sqlite3"
    server_state.belong_to("127.0.0.1:8000")
    assert server_state.stats_db_path("auto") == os.path.join("var", "stats-127.0.0.1-8000.sqlite3")
    assert server_state.stats_db_path("counts.sqlite3") == "counts.sqlite3"  # as set, shared
    server_state.belong_to("[::1]:8001")
    assert server_state.stats_db_path("auto") == os.path.join("var", "stats-1-8001.sqlite3")
    server_state.belong_to("unix:/run/feedserver.sock")
    assert server_state.stats_db_path("auto") == os.path.join(
        "var", "stats-unix-run-feedserver.sock.sqlite3"
    )


@pytest.mark.usefixtures("no_master")
def test_the_masters_table_is_kept_and_shared_by_every_app() -> None:
    assert server_state.polling_table() is not server_state.polling_table()  # one per app
    server_state.belong_to("127.0.0.1:8000")
    table = server_state.polling_table()
    server_state.belong_to("127.0.0.1:8000")  # a reload (HUP) keeps it
    assert server_state.polling_table() is table


def test_the_documented_numbers_are_the_codes() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    settings_file = (root / "config" / "feedserver.yaml").read_text(encoding="utf-8")
    assert f"**{BURST} times" in readme and "at most `reload_interval`**" in readme
    comments = " ".join(settings_file.replace("\n# ", " ").split())
    assert f"{BURST} fetches in a row" in comments
    assert f"burst of {BURST}" in SETTINGS_BY_NAME["polite_polling"].help


def test_the_bind_is_gunicorns_own_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    monkeypatch.setattr("sys.argv", ["gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"])
    assert gunicorn_bind("127.0.0.1:8000") == "127.0.0.1:8000"  # the config file's
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--bind 0.0.0.0:8080 --workers 3")
    assert gunicorn_bind("127.0.0.1:8000") == "0.0.0.0:8080"
    monkeypatch.setattr("sys.argv", ["gunicorn", "-b", "127.0.0.1:9000", "--preload", "wsgi:app"])
    assert gunicorn_bind("127.0.0.1:8000") == "127.0.0.1:9000"  # the command line wins

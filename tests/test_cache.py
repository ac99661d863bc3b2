"""The render cache: bounded in bytes (bodies and gzip copies), least recently used first."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from feedserver.cache import ENTRY_OVERHEAD, RenderCache, entry_bytes
from feedserver.catalog import empty_catalog
from feedserver.responses import Rendered

CATALOG = empty_catalog("test")


def incompressible(size: int) -> bytes:
    """Random bytes: their gzip copy is about as large as they are."""
    return os.urandom(size)


def rendered(size: int, compressible: bool = False) -> Rendered:
    body = b"a" * size if compressible else incompressible(size)
    return Rendered(body, "text/plain", None)


def fill(cache: RenderCache, keys: list[str], size: int) -> dict[str, Rendered]:
    made = {key: rendered(size) for key in keys}
    for key in keys:
        assert cache.get(CATALOG, key, partial(made.__getitem__, key)) is made[key]
    return made


def entry(size: int) -> int:
    return size + ENTRY_OVERHEAD


def test_entries_are_evicted_by_bytes_oldest_first() -> None:
    cache = RenderCache(max_bytes=3 * entry(1000))
    fill(cache, ["a", "b", "c"], 1000)
    assert len(cache) == 3 and cache.bytes == 3 * entry(1000)
    fill(cache, ["d"], 1000)
    assert cache.peek(CATALOG, "a") is None  # the oldest went
    assert all(cache.peek(CATALOG, key) is not None for key in "bcd")
    assert cache.bytes == 3 * entry(1000) <= cache.max_bytes


def test_a_recent_read_keeps_an_entry() -> None:
    cache = RenderCache(max_bytes=3 * entry(1000))
    fill(cache, ["a", "b", "c"], 1000)
    assert cache.peek(CATALOG, "a") is not None  # a is now the most recently used
    fill(cache, ["d"], 1000)
    assert cache.peek(CATALOG, "b") is None
    assert cache.peek(CATALOG, "a") is not None


def test_one_large_entry_evicts_several_small_ones() -> None:
    cache = RenderCache(max_bytes=4 * entry(1000))
    fill(cache, ["a", "b", "c", "d"], 1000)
    fill(cache, ["big"], 2500)
    assert [key for key in "abcd" if cache.peek(CATALOG, key) is not None] == ["c", "d"]
    assert cache.bytes == 2 * entry(1000) + entry(2500) <= cache.max_bytes


def test_an_entry_larger_than_the_budget_is_served_but_not_kept() -> None:
    cache = RenderCache(max_bytes=entry(1000))
    fill(cache, ["small"], 500)
    big = rendered(5000)
    assert cache.get(CATALOG, "big", lambda: big) is big
    assert cache.peek(CATALOG, "big") is None
    assert cache.peek(CATALOG, "small") is not None  # and nothing was evicted for it
    again = rendered(5000)
    assert cache.get(CATALOG, "big", lambda: again) is again  # rendered anew each time
    assert cache.renders == 3


def test_the_gzip_copy_is_counted_when_it_is_made() -> None:
    cache = RenderCache(max_bytes=3 * entry(1000) + 500)
    made = fill(cache, ["a", "b", "c"], 1000)
    assert cache.bytes == 3 * entry(1000)
    gzipped = made["c"].gzipped  # random bytes: the copy is larger than the slack left
    assert len(gzipped) > 500
    assert cache.bytes == 2 * entry(1000) + len(gzipped) <= cache.max_bytes
    assert cache.peek(CATALOG, "a") is None  # evicted to make room for c's gzip copy
    assert cache.peek(CATALOG, "c") is made["c"]
    assert made["c"].gzipped is gzipped  # made once, counted once
    assert cache.bytes == 2 * entry(1000) + len(gzipped)


def test_an_entry_whose_gzip_copy_passes_the_budget_is_dropped() -> None:
    cache = RenderCache(max_bytes=entry(1000) + 100)
    made = fill(cache, ["a"], 1000)
    assert len(made["a"].gzipped) > 100
    assert cache.peek(CATALOG, "a") is None and cache.bytes == 0 and len(cache) == 0


def test_an_evicted_entry_no_longer_counts_its_gzip_copy() -> None:
    cache = RenderCache(max_bytes=2 * entry(1000))
    made = fill(cache, ["a", "b", "c"], 1000)
    before = cache.bytes
    assert made["a"].gzipped  # served to a slow client after its eviction
    assert cache.bytes == before


def test_a_new_catalog_empties_the_cache_and_its_count() -> None:
    cache = RenderCache(max_bytes=10 * entry(1000))
    made = fill(cache, ["a", "b"], 1000)
    newer = empty_catalog("test")
    fresh = rendered(1000)
    cache.get(newer, "a", lambda: fresh)
    assert cache.bytes == entry(1000) and len(cache) == 1
    assert made["b"].gzipped  # an entry of the old catalog counts nowhere
    assert cache.bytes == entry(1000)


def test_a_zero_budget_keeps_nothing() -> None:
    cache = RenderCache(max_bytes=0)
    fill(cache, ["a"], 10)
    assert len(cache) == 0 and cache.bytes == 0


def test_concurrent_gzip_of_one_entry_is_counted_once() -> None:
    cache = RenderCache(max_bytes=100 * entry(100_000))
    made = fill(cache, ["a"], 100_000)
    threads = [threading.Thread(target=lambda: made["a"].gzipped) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.bytes == entry(100_000) + len(made["a"].gzipped)


# --- single flight: one render per key, however many requests miss at once ----------------

# How long the first render holds on while the other requests arrive and wait for it.
ARRIVAL_SECONDS = 0.3


def misses_at_once(cache: RenderCache, render: Callable[[], Rendered], count: int) -> list[Any]:
    """What `count` threads get (a response or the exception raised) asking for one key at
    once, while the first render is held until the others have had time to ask too."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def ask(index: int) -> None:
        start.wait()
        try:
            results[index] = cache.get(CATALOG, "key", render)
        except ValueError as error:
            results[index] = error

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_misses_of_one_key_render_it_once() -> None:
    cache = RenderCache()
    calls: list[Rendered] = []

    def render() -> Rendered:
        time.sleep(ARRIVAL_SECONDS)  # the others ask meanwhile
        calls.append(rendered(1000))
        return calls[-1]

    results = misses_at_once(cache, render, 8)
    assert len(calls) == 1 and cache.renders == 1
    assert all(result is calls[0] for result in results)
    assert cache.peek(CATALOG, "key") is calls[0]


def test_when_the_first_render_fails_each_waiting_request_renders_for_itself() -> None:
    cache = RenderCache()
    calls: list[str] = []
    lock = threading.Lock()

    def render() -> Rendered:
        with lock:
            first = not calls
            calls.append("render")
        if first:
            time.sleep(ARRIVAL_SECONDS)
            raise ValueError("no such page")  # a 404 of the route, say
        return rendered(100)

    results = misses_at_once(cache, render, 4)
    assert [type(result) for result in results].count(ValueError) == 1
    assert sum(isinstance(result, Rendered) for result in results) == 3
    assert len(calls) == 4


def test_different_keys_render_side_by_side() -> None:
    """Single flight is per key: a slow render holds up no request for another key."""
    cache = RenderCache()
    slow_started, slow_may_end = threading.Event(), threading.Event()

    def slow() -> Rendered:
        slow_started.set()
        assert slow_may_end.wait(10)
        return rendered(100)

    thread = threading.Thread(target=lambda: cache.get(CATALOG, "slow", slow))
    thread.start()
    assert slow_started.wait(10)
    fast = rendered(100)
    assert cache.get(CATALOG, "fast", lambda: fast) is fast  # while "slow" still renders
    slow_may_end.set()
    thread.join()
    assert cache.renders == 2 and len(cache) == 2


def ready(response: Rendered) -> Callable[[], Rendered]:
    """A render that answers a response made beforehand."""
    return lambda: response


def test_the_budget_holds_however_entries_come_and_go() -> None:
    budget = 20 * entry(1000)
    cache = RenderCache(max_bytes=budget)
    sizes = [100, 5000, 1000, 20_000, 300, 7000, 2500, 50, 12_000, 900] * 5
    for number, size in enumerate(sizes):
        made = rendered(size)
        cache.get(CATALOG, number, ready(made))
        if number % 3 == 0:
            assert made.gzipped
        assert cache.bytes <= budget
        kept = [cache.peek(CATALOG, key) for key in range(number + 1)]
        assert cache.bytes == sum(entry_bytes(found) for found in kept if found is not None)
    assert cache.peek(CATALOG, len(sizes) - 1) is not None  # the newest stays

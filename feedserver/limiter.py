"""A token bucket per key (GCRA: one "theoretical arrival time" per key), kept in a bounded,
lossy table of anonymous shared memory.

A key may spend a burst of `burst` requests at once; the bucket refills at one request per
`interval` seconds, so only a key that keeps asking faster than that is ever refused, and it
never waits longer than one `interval` (Retry-After is bounded by it).

The table is made with `mmap.mmap(-1, size)` (anonymous, MAP_SHARED): made before a fork, it
is shared by the parent and every child, with no file at all. It is lossy by design: a slot
holds one key; a key whose slot another key took (or whose slot reads torn, two processes
writing it at once) simply starts with a full bucket. Losing a slot can only let a request
through, never refuse one wrongly."""

from __future__ import annotations

import hashlib
import math
import mmap
import secrets
import struct
import time
from collections.abc import Callable

SLOTS = 1 << 16  # 1 MiB of shared memory; its pages are only made as keys land on them
# Check word (fingerprint XOR arrival time) and arrival time in milliseconds: a slot whose
# two words were written by different requests fails the check and reads as empty.
_SLOT = struct.Struct("<QQ")
_MASK = (1 << 64) - 1


class SharedTable:
    """A fixed number of (fingerprint, arrival time) slots in anonymous shared memory."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * _SLOT.size)
        # Keyed, so clients cannot choose keys that land on one another's slots.
        self._key = secrets.token_bytes(16)

    def _locate(self, key: bytes) -> tuple[int, int]:
        digest = hashlib.blake2b(key, digest_size=8, key=self._key).digest()
        fingerprint = int.from_bytes(digest, "little")
        return fingerprint, (fingerprint % self.slots) * _SLOT.size

    def get(self, key: bytes) -> int | None:
        """The arrival time stored for key (milliseconds), None when its slot holds another."""
        fingerprint, offset = self._locate(key)
        check, arrival = _SLOT.unpack_from(self._map, offset)
        return int(arrival) if check ^ arrival == fingerprint else None

    def put(self, key: bytes, arrival: int) -> None:
        """Store key's arrival time (milliseconds), taking its slot from any other key."""
        fingerprint, offset = self._locate(key)
        arrival &= _MASK
        _SLOT.pack_into(self._map, offset, fingerprint ^ arrival, arrival)


class TokenBuckets:
    """One token bucket per key: `burst` requests at once, refilled at one per `interval`."""

    def __init__(
        self,
        table: SharedTable,
        interval: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or burst < 1:
            raise ValueError("interval must be positive and burst at least 1")
        self.table = table
        self.interval = interval
        self.burst = burst
        self.clock = clock  # monotonic: one clock for every process of the machine

    def take(self, key: bytes) -> float:
        """0 when key may go ahead (and its request is counted), else the seconds to wait
        (more than 0, at most `interval`)."""
        now = int(self.clock() * 1000)
        step = max(1, int(self.interval * 1000))
        tolerance = (self.burst - 1) * step
        arrival = self.table.get(key)
        if arrival is None or arrival < now or arrival - now > tolerance + step:
            # An unknown key, a full bucket, or a time no request could have left there (a
            # table of another boot, a torn slot): the bucket starts full.
            arrival = now
        if arrival - now > tolerance:
            return (arrival - tolerance - now) / 1000
        self.table.put(key, arrival + step)
        return 0.0


def retry_after(wait: float, interval: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, never more than the interval."""
    return max(1, min(math.ceil(wait), math.ceil(interval)))

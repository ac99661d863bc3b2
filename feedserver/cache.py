"""The render cache: rendered responses (responses.py), kept per catalog (an entry never
outlives the catalog it was made from), bounded in bytes, each rendered once at a time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .catalog import Catalog
from .responses import Rendered

# What an entry costs beside its bodies (key, headers, objects), so tiny ones count too.
ENTRY_OVERHEAD = 1024


def entry_bytes(rendered: Rendered) -> int:
    """What a kept response costs the budget: its bodies (the gzip copy once made) and an
    overhead."""
    return rendered.held_bytes + ENTRY_OVERHEAD


class _Pending:
    """A render in progress that other requests for the same key wait for."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Rendered | None = None


class RenderCache:
    """An LRU map of rendered responses for the current catalog only, bounded in bytes.

    Each entry counts its body, its gzip copy (from when it is made) and a fixed overhead;
    the least recently used entries go when the total passes `max_bytes`, and a response
    larger than the whole budget is served but not kept. Each key is rendered at most once
    per catalog while it is kept: concurrent requests for a key that is being rendered wait
    for that render instead of repeating it.
    """

    def __init__(self, max_bytes: int = 64_000_000) -> None:
        self.max_bytes = max_bytes
        self.renders = 0  # how many renders ran, for tests and benchmarks
        self.bytes = 0  # what the kept entries hold now
        self._catalog: Catalog | None = None
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._pending: dict[Hashable, _Pending] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Hashable) -> None:
        """Forget an entry (the lock is held)."""
        rendered = self._entries.pop(key)
        rendered.on_grow = None
        self.bytes -= self._sizes.pop(key)

    def _keep(self, key: Hashable, rendered: Rendered) -> None:
        """Count an entry at its current size, then evict down to the budget (lock held)."""
        if key in self._entries:
            self.bytes -= self._sizes[key]
        self._entries[key] = rendered
        self._entries.move_to_end(key)
        self._sizes[key] = entry_bytes(rendered)
        self.bytes += self._sizes[key]
        while self.bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _grown(self, catalog: Catalog, key: Hashable, rendered: Rendered) -> None:
        """A kept entry made its gzip copy: count it, evicting others (or itself) to fit."""
        with self._lock:
            if catalog is self._catalog and self._entries.get(key) is rendered:
                self._keep(key, rendered)

    def peek(self, catalog: Catalog, key: Hashable) -> Rendered | None:
        """The cached response for key under this catalog, if there is one."""
        with self._lock:
            if catalog is not self._catalog:
                return None
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def get(self, catalog: Catalog, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        """The cached response for key under this catalog, rendering it on a miss."""
        with self._lock:
            if catalog is not self._catalog:
                for old in self._entries.values():
                    old.on_grow = None
                self._catalog = catalog
                self._entries = OrderedDict()
                self._sizes = {}
                self.bytes = 0
                self._pending = {}
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
        if not owner:
            pending.done.wait()
            # The owner's render raised (a 404, say): this request meets the same fate itself.
            return pending.result if pending.result is not None else render()
        try:
            rendered = pending.result = render()  # outside the lock: others are not held up
            with self._lock:
                self.renders += 1
                if catalog is self._catalog and entry_bytes(rendered) <= self.max_bytes:
                    rendered.on_grow = lambda grown: self._grown(catalog, key, grown)
                    self._keep(key, rendered)
            return rendered
        finally:
            with self._lock:
                if self._pending.get(key) is pending:
                    del self._pending[key]
            pending.done.set()

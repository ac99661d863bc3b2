"""Rendered responses, kept per catalog: an entry never outlives the catalog it was made from."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

from .catalog import Catalog

# Level 6 is gzip's default: nearly the size of 9 at a fraction of the time.
GZIP_LEVEL = 6


@dataclass(slots=True)
class Rendered:
    """A response body with its validators; the gzip form is made once, on first demand."""

    body: bytes
    content_type: str
    last_modified: datetime | None
    etag: str = ""
    _gzipped: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Strong validator from the bytes alone: equal in every worker and after restarts.
        self.etag = hashlib.blake2b(self.body, digest_size=16).hexdigest()

    @property
    def gzipped(self) -> bytes:
        """The body gzip-compressed with a fixed mtime, so its bytes are stable too."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped


class RenderCache:
    """A bounded LRU map of rendered responses for the current catalog only."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._catalog: Catalog | None = None
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, catalog: Catalog, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        """The cached response for key under this catalog, rendering it on a miss."""
        with self._lock:
            if catalog is not self._catalog:
                self._catalog = catalog
                self._entries.clear()
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        rendered = render()  # outside the lock: a slow render does not block other feeds
        with self._lock:
            if catalog is self._catalog:
                self._entries[key] = rendered
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return rendered

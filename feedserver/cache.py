"""Rendered responses, kept per catalog: an entry never outlives the catalog it was made from."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.http import http_date, quote_etag

from .catalog import Catalog

# Level 6 is gzip's default: nearly the size of 9 at a fraction of the time.
GZIP_LEVEL = 6


Headers = list[tuple[str, str]]


@dataclass(slots=True)
class Rendered:
    """A response body with its validators and headers, each made once, on first demand:
    a cached feed is served without formatting a date or compressing anything again."""

    body: bytes
    content_type: str
    last_modified: datetime | None
    extra_headers: tuple[tuple[str, str], ...] = ()
    # Seconds a reader may keep it (a feed's own polling interval); None: the server's.
    max_age: int | None = None
    # The request headers the body was chosen on (a feed URL's variants add Accept).
    vary: str = "Accept-Encoding"
    etag: str = ""
    _gzipped: bytes | None = field(default=None, repr=False)
    _headers: dict[tuple[bool, int], Headers] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Strong validator from the bytes alone: equal in every worker and after restarts.
        self.etag = hashlib.blake2b(self.body, digest_size=16).hexdigest()

    @property
    def gzipped(self) -> bytes:
        """The body gzip-compressed with a fixed mtime, so its bytes are stable too."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped

    def etag_for(self, compressed: bool) -> str:
        """The strong ETag of the plain or the gzip representation (they must differ)."""
        return f"{self.etag}-gz" if compressed else self.etag

    def headers(self, compressed: bool, max_age: int) -> Headers:
        """The response headers of the plain or gzip representation; `max_age` is the
        server's own (reload_interval). A feed that publishes less often lets readers keep
        it longer, while shared caches (s-maxage) still revalidate at the server's pace."""
        key = (compressed, max_age)
        found = self._headers.get(key)
        if found is None:
            body = self.gzipped if compressed else self.body
            found = [("Content-Type", self.content_type), ("Content-Length", str(len(body)))]
            if compressed:
                found.append(("Content-Encoding", "gzip"))
            found += [
                ("Vary", self.vary),
                ("ETag", quote_etag(self.etag_for(compressed))),
                ("Cache-Control", self._cache_control(max_age)),
                ("X-Content-Type-Options", "nosniff"),
            ]
            if self.last_modified is not None:
                found.append(("Last-Modified", http_date(self.last_modified)))
            found += self.extra_headers
            self._headers[key] = found
        return found

    def _cache_control(self, server_max_age: int) -> str:
        if self.max_age is None or self.max_age <= server_max_age:
            return f"public, max-age={server_max_age}"
        return f"public, max-age={self.max_age}, s-maxage={server_max_age}"


class _Pending:
    """A render in progress that other requests for the same key wait for."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Rendered | None = None


class RenderCache:
    """A bounded LRU map of rendered responses for the current catalog only.

    Each key is rendered at most once per catalog: concurrent requests for a key that is
    being rendered wait for that render instead of repeating it.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self.renders = 0  # how many renders ran, for tests and benchmarks
        self._catalog: Catalog | None = None
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._pending: dict[Hashable, _Pending] = {}
        self._lock = threading.Lock()

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
                self._catalog = catalog
                self._entries = OrderedDict()
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
            pending.result = render()  # outside the lock: other feeds are not held up
            with self._lock:
                self.renders += 1
                if catalog is self._catalog:
                    self._entries[key] = pending.result
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            return pending.result
        finally:
            with self._lock:
                if self._pending.get(key) is pending:
                    del self._pending[key]
            pending.done.set()

"""Polite polling, enforced, and every answered request noted for the audience figures.

A client (address + User-Agent) that fetches one feed again, unconditionally, sooner than
the feed's freshness hint gets `429 Too Many Requests` with `Retry-After`. Conditional
requests (If-None-Match / If-Modified-Since) cost almost nothing and are never limited, nor
are aggregators that report subscribers, nor browsers opening a page.

The last poll of each client and feed is kept in a small table in shared memory (a file
mapped by every worker of the server), so the limit holds whichever worker answers. The
table is lossy by design: two clients that share a slot only forget each other's times,
which lets a request through, never refuses one wrongly."""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .audience import feed_of, identify, is_feed_document
from .negotiation import is_navigation
from .polls import PollRecorder
from .responses import CONTENT_TYPES, NO_STORE, NOSNIFF, WSGIApp

SLOTS = 1 << 16
_SLOT = struct.Struct("<Qd")  # fingerprint of (client, feed), time of its last poll


class PollingTable:
    """The time of each (client, feed)'s last unconditional poll, shared by processes."""

    def __init__(self, path: str | None) -> None:
        size = SLOTS * _SLOT.size
        if path is None:
            self._map = mmap.mmap(-1, size)
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(descriptor).st_size != size:
                os.ftruncate(descriptor, size)
            self._map = mmap.mmap(descriptor, size)
        finally:
            os.close(descriptor)

    def wait_left(self, client: bytes, now: float, interval: float) -> float:
        """Seconds the client must still wait; 0 when it may poll (and its poll is noted)."""
        fingerprint = int.from_bytes(hashlib.blake2b(client, digest_size=8).digest(), "little")
        offset = (fingerprint % SLOTS) * _SLOT.size
        stored, last = _SLOT.unpack_from(self._map, offset)
        if stored == fingerprint and 0 <= now - last < interval:
            return float(interval - (now - last))
        _SLOT.pack_into(self._map, offset, fingerprint, now)
        return 0.0


def _too_many(seconds: float) -> tuple[str, list[tuple[str, str]], bytes]:
    wait = max(1, math.ceil(seconds))
    body = (
        f"429 Too Many Requests: this feed changes at most every {wait} seconds from now; "
        "poll it less often, or send If-None-Match or If-Modified-Since\n"
    ).encode()
    headers = [
        ("Content-Type", CONTENT_TYPES["text"]),
        ("Content-Length", str(len(body))),
        ("Retry-After", str(wait)),
        ("Cache-Control", NO_STORE),
        NOSNIFF,
    ]
    return "429 Too Many Requests", headers, body


class AudienceMiddleware:
    """WSGI middleware: refuse impolite polls, and note every answer for the figures."""

    def __init__(
        self,
        app: WSGIApp,
        recorder: PollRecorder,
        table: PollingTable | None,
        interval: Callable[[str], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.table = table
        self.interval = interval
        self.clock = clock

    def _wait_left(self, environ: dict[str, Any]) -> float:
        if (
            self.table is None
            or environ.get("REQUEST_METHOD") != "GET"
            or "HTTP_IF_NONE_MATCH" in environ
            or "HTTP_IF_MODIFIED_SINCE" in environ
            or is_navigation(environ)  # a person opening the feed's preview
        ):
            return 0.0
        path = environ.get("PATH_INFO", "")
        if not is_feed_document(path):
            return 0.0
        agent = environ.get("HTTP_USER_AGENT", "")
        if identify(agent).is_aggregator:
            return 0.0
        client = f"{environ.get('REMOTE_ADDR', '')}\n{agent}\n{path}".encode("utf-8", "replace")
        return self.table.wait_left(client, self.clock(), self.interval(path))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        environ["feedserver.feed"] = feed_of(environ.get("PATH_INFO", "")) or "-"
        wait = self._wait_left(environ)
        if wait > 0:
            status, headers, body = _too_many(wait)
            start_response(status, headers)
            self.recorder.note(environ, "429")
            return [body]
        answered: list[str] = []

        def noting_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            answered.append(status)
            return start_response(status, headers, exc_info)

        result = self.app(environ, noting_start_response)
        self.recorder.note(environ, answered[-1][:3] if answered else "500")
        return result

"""Polite polling, enforced, and every answered request noted for the audience figures.

Each client (address + User-Agent) has a token bucket per feed URL: the path and its
canonical query (responses.canonical_query), so every format, page, limit, search and
selection is a feed of its own, and parameters the server ignores make no new one. A client
may fetch a feed unconditionally BURST times in a row (curl, a reader subscribing and then
reloading everything, a probe); the bucket refills at one fetch per reload_interval, since
nothing can change sooner. Only a client that keeps polling unconditionally faster than
that gets `429 Too Many Requests`, with a Retry-After of at most reload_interval. A feed's
freshness hint (ttl, max-age) is advice to readers, never a limit.

Conditional requests (If-None-Match / If-Modified-Since) cost almost nothing and are never
limited, nor are aggregators that report subscribers, nor browsers opening a page. The
buckets live in the server's shared table (server_state.py, limiter.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .audience import feed_of, identify, is_feed_document
from .clients import client_address
from .limiter import SharedTable, TokenBuckets, retry_after
from .negotiation import is_navigation
from .networks import Network
from .polls import CLIENT, PollRecorder
from .responses import CONTENT_TYPES, NO_STORE, NOSNIFF, WSGIApp, canonical_query

# Unconditional fetches of one feed a client may make in a row before it must slow down.
BURST = 5


def polite_limiter(
    table: SharedTable, reload_interval: float, clock: Callable[[], float] = time.monotonic
) -> TokenBuckets:
    """The buckets of polite polling: BURST fetches, one more per reload_interval."""
    return TokenBuckets(table, reload_interval, BURST, clock)


def _too_many(wait: int) -> tuple[str, list[tuple[str, str]], bytes]:
    body = (
        f"429 Too Many Requests: this feed was fetched unconditionally more than {BURST} "
        f"times in a row, faster than the server can change it; retry in {wait} seconds, "
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
        limiter: TokenBuckets | None,
        proxies: tuple[Network, ...] = (),
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.limiter = limiter
        self.proxies = proxies

    def _wait(self, environ: dict[str, Any]) -> float:
        if (
            self.limiter is None
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
        feed = f"{path}?{canonical_query(environ)}"
        client = f"{environ[CLIENT]}\n{agent}\n{feed}"
        return self.limiter.take(client.encode("utf-8", "replace"))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        environ["feedserver.feed"] = feed_of(environ.get("PATH_INFO", "")) or "-"
        environ[CLIENT] = client_address(environ, self.proxies)
        wait = self._wait(environ)
        if wait > 0 and self.limiter is not None:
            status, headers, body = _too_many(retry_after(wait, self.limiter.interval))
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

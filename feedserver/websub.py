"""WebSub publishing: tell the hub which feeds changed after a reload.

Every worker reloads on its own, but only one process publishes: the one that holds an
exclusive lock on a file shared by all of a server's workers. When it dies the lock is
released, and the next worker to reload takes it over. Notifications go out from a
background thread, retried with growing pauses, so a slow or dead hub never holds up a
request or a reload. The queue holds each feed URL at most once (the hub fetches the feed
when told, so one ping covers every change made before it) and is bounded; the hub's
redirects are not followed (a 3xx is a failure)."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import IO
from urllib.parse import urlencode

from flask import Flask

from .catalog import Catalog, Collection, collection_keys
from .models import Article
from .scheduler import ReloadScheduler
from .settings import Settings
from .urls import FEED_EXTENSIONS, Urls

logger = logging.getLogger(__name__)

# Feed URLs waiting for a ping, at most: three per collection, so room for thousands of
# topics and providers changed at once while the hub is down.
MAX_PENDING = 30_000


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """The hub's 3xx is an answer, not an address to post to instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# An opener like urlopen's, without following redirects: a 3xx raises HTTPError.
_OPENER = urllib.request.build_opener(_RefuseRedirects)


class _Outbox:
    """Feed URLs waiting for a ping, oldest first: each at most once (the hub fetches the
    feed when told, so one ping covers every change before it), and at most `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._urls: OrderedDict[str, None] = OrderedDict()
        self._ready = threading.Condition()

    def add(self, feed_urls: Iterable[str]) -> int:
        """Queue the URLs not already waiting; how many were dropped for want of room."""
        dropped = 0
        with self._ready:
            for url in feed_urls:
                if url in self._urls:
                    continue
                if len(self._urls) >= self.limit:
                    dropped += 1
                    continue
                self._urls[url] = None
            self._ready.notify()
        return dropped

    def take(self) -> str:
        """The oldest waiting URL, waiting for one if there is none."""
        with self._ready:
            while not self._urls:
                self._ready.wait()
            return self._urls.popitem(last=False)[0]

    def waiting(self) -> list[str]:
        """The URLs waiting, oldest first."""
        with self._ready:
            return list(self._urls)


def changed_collections(before: Catalog, after: Catalog, limit: int) -> Iterator[Collection]:
    """The collections of `after` whose default feed (its first `limit` entries) differs."""
    pairs: list[tuple[Collection | None, Collection]] = [(before.everything, after.everything)]
    pairs += [(before.topics.get(key), c) for key, c in after.topics.items()]
    pairs += [(before.providers.get(key), c) for key, c in after.providers.items()]
    renamed = _renamed(before.topics, after.topics) | _renamed(before.providers, after.providers)
    for old, new in pairs:
        # Unchanged collections are the very same objects: the identity test is the fast path.
        if old is not new and (
            old is None or old.name != new.name or old.articles[:limit] != new.articles[:limit]
        ):
            yield new
        elif renamed and _names_any(new.articles[:limit], renamed):
            # Its entries show their topics' and provider's display names, and one changed.
            yield new


def _renamed(before: dict[str, Collection], after: dict[str, Collection]) -> set[tuple[str, str]]:
    """The (kind, key) of each collection served before and after under another name."""
    return {
        (new.kind, key)
        for key, new in after.items()
        if (old := before.get(key)) is not None and old is not new and old.name != new.name
    }


def _names_any(articles: Iterable[Article], keys: set[tuple[str, str]]) -> bool:
    """Whether any of the articles names one of these topics or providers."""
    return any(not keys.isdisjoint(collection_keys(article)) for article in articles)


# Doubling pauses between retries stop growing here: a hub that comes back is told soon.
MAX_PAUSE_SECONDS = 300.0


class HubPublisher:
    """Sends `hub.mode=publish` for each changed feed, from one process of a server."""

    def __init__(
        self,
        hub: str,
        base_url: str,
        feed_limit: int,
        lock_name: str,
        attempts: int = 6,
        first_pause: float = 1.0,
        max_pending: int = MAX_PENDING,
        *,
        max_pause: float = MAX_PAUSE_SECONDS,
    ) -> None:
        self.hub = hub
        self.base_url = base_url
        self.feed_limit = feed_limit
        self.lock_path = os.path.join(tempfile.gettempdir(), f"feedserver-websub-{lock_name}.lock")
        self.attempts = attempts
        self.first_pause = first_pause
        self.max_pause = max_pause
        self._lock_file: IO[bytes] | None = None
        self.max_pending = max_pending
        self.dropped = 0  # notifications refused because the queue was full
        self._queue: _Outbox | None = None
        self._queue_pid: int | None = None
        self._sender: threading.Thread | None = None
        # Told of each notification's outcome (True: the hub accepted it), for the metrics.
        self.on_outcome: Callable[[bool], None] = lambda accepted: None

    def holds_lock(self) -> bool:
        """Whether this process is the publisher, taking the role if it is free."""
        if self._lock_file is not None:
            return True
        handle = open(self.lock_path, "ab")  # noqa: SIM115 - held open while publishing
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        logger.info("WebSub: process %d publishes to %s", os.getpid(), self.hub)
        return True

    def on_reload(self, before: Catalog, after: Catalog) -> None:
        """Queue one notification per feed of every collection whose content changed."""
        if not self.holds_lock():
            return
        urls = Urls(self.base_url)
        self.enqueue(
            urls.feed(collection, extension)
            for collection in changed_collections(before, after, self.feed_limit)
            for extension in FEED_EXTENSIONS
        )

    def enqueue(self, feed_urls: Iterable[str]) -> None:
        """Queue a ping for each feed URL not already waiting; past the bound, drop and warn."""
        outbox = self._outbox()
        dropped = outbox.add(feed_urls)
        self._start_sender(outbox)
        if dropped:
            self.dropped += dropped
            logger.warning(
                "WebSub: queue full (%d feeds waiting); dropped %d notifications",
                self.max_pending,
                dropped,
            )

    def pending(self) -> list[str]:
        """The feed URLs waiting for a ping, oldest first (not the one being sent)."""
        return self._queue.waiting() if self._queue is not None else []

    def _outbox(self) -> _Outbox:
        """This process's queue of feeds to announce. Made here rather than with the app: a
        queue made in gunicorn's master before a --preload fork holds real locks, and
        waiting on one would block a gevent worker's whole event loop."""
        if self._queue is None or self._queue_pid != os.getpid():
            self._queue, self._queue_pid = _Outbox(self.max_pending), os.getpid()
            self._sender = None
        return self._queue

    def _start_sender(self, outbox: _Outbox) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_all, args=(outbox,), name="websub", daemon=True
            )
            self._sender.start()

    def _send_all(self, outbox: _Outbox) -> None:
        while True:
            self.publish(outbox.take())

    def publish(self, feed_url: str) -> bool:
        """Notify the hub of one feed, retrying with doubling pauses; True once it accepts."""
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            problem = self._post(feed_url)
            if problem is None:
                logger.info("WebSub: hub accepted %s", feed_url)
                self.on_outcome(True)
                return True
            if attempt < self.attempts:
                logger.warning(
                    "WebSub: %s for %s (attempt %d); retrying in %.0fs",
                    problem,
                    feed_url,
                    attempt,
                    pause,
                )
                time.sleep(pause)
                pause = min(pause * 2, self.max_pause)
        logger.error("WebSub: gave up on %s after %d attempts: %s", feed_url, attempt, problem)
        self.on_outcome(False)
        return False

    def _post(self, feed_url: str) -> str | None:
        data = urlencode({"hub.mode": "publish", "hub.url": feed_url}).encode()
        request = urllib.request.Request(self.hub, data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with _OPENER.open(request, timeout=10) as response:
                response.read()
                return None
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                return f"hub answered {error.code} (redirects are not followed)"
            return f"hub answered {error.code}"
        except (OSError, ValueError) as error:
            return f"hub unreachable ({error})"


def init_app(app: Flask, scheduler: ReloadScheduler, settings: Settings) -> HubPublisher | None:
    """Publish changes to the configured hub after each reload, if there is one."""
    if not settings.websub_hub:
        return None
    identity = f"{os.path.realpath(settings.seeds_dir)}|{settings.base_url}"
    publisher = HubPublisher(
        settings.websub_hub,
        settings.base_url,
        settings.feed_limit,
        hashlib.sha256(identity.encode()).hexdigest()[:16],
    )
    scheduler.on_start.append(publisher.holds_lock)  # take the role now if it is free
    scheduler.listeners.append(publisher.on_reload)
    metrics = app.extensions.get("feedserver.metrics")
    if metrics is not None:
        publisher.on_outcome = lambda accepted: metrics.websub.labels(
            "sent" if accepted else "failed"
        ).inc()
    app.extensions["feedserver.websub"] = publisher
    return publisher

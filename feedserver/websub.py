"""WebSub publishing: tell the hub which feeds changed after a reload.

Every worker reloads on its own, but only one process publishes: the one that holds an
exclusive lock on a file shared by all of a server's workers. When it dies the lock is
released, and the next worker to reload takes it over. Notifications go out from a
background thread, retried with growing pauses, so a slow or dead hub never holds up a
request or a reload."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import urlencode

from flask import Flask

from .catalog import Catalog, Collection
from .scheduler import ReloadScheduler
from .urls import FEED_EXTENSIONS, feed_path

logger = logging.getLogger(__name__)


def changed_collections(before: Catalog, after: Catalog, limit: int) -> Iterator[Collection]:
    """The collections of `after` whose default feed (its first `limit` entries) differs."""
    pairs: list[tuple[Collection | None, Collection]] = [(before.everything, after.everything)]
    pairs += [(before.topics.get(key), c) for key, c in after.topics.items()]
    pairs += [(before.providers.get(key), c) for key, c in after.providers.items()]
    for old, new in pairs:
        # Unchanged collections are the very same objects: the identity test is the fast path.
        if old is new:
            continue
        if old is None or old.name != new.name or old.articles[:limit] != new.articles[:limit]:
            yield new


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
    ) -> None:
        self.hub = hub
        self.base_url = base_url
        self.feed_limit = feed_limit
        self.lock_path = os.path.join(tempfile.gettempdir(), f"feedserver-websub-{lock_name}.lock")
        self.attempts = attempts
        self.first_pause = first_pause
        self._lock_file: IO[bytes] | None = None
        self._queue: queue.Queue[str] | None = None
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

    def claim(self) -> None:
        """Take the publisher's role now if no other process holds it."""
        self.holds_lock()

    def on_reload(self, before: Catalog, after: Catalog) -> None:
        """Queue one notification per feed of every collection whose content changed."""
        if not self.holds_lock():
            return
        outbox = self._outbox()
        for collection in changed_collections(before, after, self.feed_limit):
            for extension in FEED_EXTENSIONS:
                outbox.put(f"{self.base_url}{feed_path(collection, extension)}")
        self._start_sender(outbox)

    def _outbox(self) -> queue.Queue[str]:
        """This process's queue of feeds to announce. Made here rather than with the app: a
        queue made in gunicorn's master before a --preload fork holds real locks, and
        waiting on one would block a gevent worker's whole event loop."""
        if self._queue is None or self._queue_pid != os.getpid():
            self._queue, self._queue_pid, self._sender = queue.Queue(), os.getpid(), None
        return self._queue

    def _start_sender(self, outbox: queue.Queue[str]) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_all, args=(outbox,), name="websub", daemon=True
            )
            self._sender.start()

    def _send_all(self, outbox: queue.Queue[str]) -> None:
        while True:
            self.publish(outbox.get())

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
                pause *= 2
        logger.error("WebSub: gave up on %s after %d attempts: %s", feed_url, attempt, problem)
        self.on_outcome(False)
        return False

    def _post(self, feed_url: str) -> str | None:
        data = urlencode({"hub.mode": "publish", "hub.url": feed_url}).encode()
        request = urllib.request.Request(self.hub, data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return None
        except urllib.error.HTTPError as error:
            return f"hub answered {error.code}"
        except (OSError, ValueError) as error:
            return f"hub unreachable ({error})"


def init_app(app: Flask, scheduler: ReloadScheduler) -> HubPublisher | None:
    """Publish changes to the configured hub after each reload, if there is one."""
    settings = app.config["FEEDSERVER"]
    if not settings["websub_hub"]:
        return None
    identity = f"{os.path.realpath(settings['seeds_dir'])}|{settings['base_url']}"
    publisher = HubPublisher(
        settings["websub_hub"],
        settings["base_url"],
        settings["feed_limit"],
        hashlib.sha256(identity.encode()).hexdigest()[:16],
    )
    scheduler.on_start.append(publisher.claim)
    scheduler.listeners.append(publisher.on_reload)
    metrics = app.extensions.get("feedserver.metrics")
    if metrics is not None:
        publisher.on_outcome = lambda accepted: metrics.websub.labels(
            "sent" if accepted else "failed"
        ).inc()
    app.extensions["feedserver.websub"] = publisher
    return publisher

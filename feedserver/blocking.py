"""Waiting on a file lock or a disk without stalling a gevent worker: under gunicorn's gevent
worker a Python thread is a greenlet of the one event loop, and SQLite's busy wait (a C sleep)
held that loop, so every request of the worker, cached feeds included, waited with it (up to
5 s per flush). Such work runs in a real OS thread of gevent's thread pool instead; the
calling greenlet waits for it and the others go on serving. Without gevent it runs in place.

The work must touch nothing of the event loop (no gevent lock, no logging): it returns what
happened, and the caller reports it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")


def under_gevent() -> bool:
    """Whether this process's threads are gevent greenlets (gunicorn's gevent worker)."""
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


def off_the_loop(work: Callable[[], Result]) -> Result:
    """Run blocking I/O where it cannot hold the event loop: a thread of gevent's pool when
    serving under gevent, else right here."""
    if not under_gevent():
        return work()
    from gevent import get_hub

    return get_hub().threadpool.apply(work)  # type: ignore[no-any-return]

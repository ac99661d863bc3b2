"""Forks that never catch another thread half-way through a log line.

The gunicorn master runs threads (the reload job, gunicorn's control socket) that log while
it forks workers. A fork taken while one of them is inside a stream's write leaves the
child with that stream's lock held by a thread it does not have: the new worker hangs on
its first log line ("Booting worker"), never serving. logging renews its own locks in the
child, not the streams' under them; so the master takes every handler's lock before it
forks (no thread is then writing through one) and lets go of them after."""

from __future__ import annotations

import logging
import os
import threading

_held: list[logging.Handler] = []
_registered = False
_registering = threading.Lock()


def hold_log_handlers_across_forks() -> None:
    """From now on, fork only between log lines (in this process and its forks). Once."""
    global _registered
    with _registering:
        if _registered:
            return
        os.register_at_fork(
            before=_hold_handlers, after_in_parent=_release_handlers, after_in_child=_forget
        )
        _registered = True


def _handlers() -> list[logging.Handler]:
    """Every handler of every logger, each once (a thread holds one at a time: no cycle)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            found.setdefault(id(handler), handler)
    return list(found.values())


def _hold_handlers() -> None:
    for handler in _handlers():
        handler.acquire()
        _held.append(handler)


def _release_handlers() -> None:
    while _held:
        _held.pop().release()


def _forget() -> None:
    # logging renews every handler's lock in the child: nothing to let go of here.
    _held.clear()

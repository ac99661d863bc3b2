"""Which folders of the seeds tree changed since the last reload, from inotify's events.

With this, a scheduled reload lists and stats only the folders that had events instead of
every file: a reload with nothing changed costs about the same at 100,000 files as at 1,000.
It is a shortcut, never the only way: the store falls back to a full scan when inotify is
not available (not Linux, or the `inotify_simple` package missing), when the kernel's event
queue overflowed, when a watch cannot be added (the `max_user_watches` limit), in a new
process (a fork does not share the parent's watches usefully), and every FULL_SCAN_EVERY
reloads whatever happened, as a safety net for changes inotify does not report (a file
reached through a symlink, a network file system).

A watch follows a folder's inode, not its name: after `mv seeds seeds.old && mv seeds.new
seeds` (or the same with a subfolder) it watches the old folder. So each watch remembers the
identity (device and inode) of the folder it was added for, and a folder of the tree that is
now another one is watched again; a watched folder that is moved or deleted is reported as
changed, so the next reload looks at what its name holds now.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .tree import Identity

logger = logging.getLogger(__name__)

FULL_SCAN_EVERY = 10

try:
    import inotify_simple
except ImportError:  # not Linux, or not installed: full scans only
    inotify_simple = None

if inotify_simple is not None:
    _flags = inotify_simple.flags
    MASK = (
        _flags.CREATE
        | _flags.DELETE
        | _flags.MODIFY
        | _flags.CLOSE_WRITE
        | _flags.MOVED_FROM
        | _flags.MOVED_TO
        | _flags.ATTRIB
        | _flags.DELETE_SELF
        | _flags.MOVE_SELF
        | _flags.ONLYDIR
        | _flags.DONT_FOLLOW
    )
    OVERFLOW = int(_flags.Q_OVERFLOW)
    GONE = int(_flags.IGNORED)


class FolderWatcher:
    """inotify watches on every folder of one seeds tree, owned by one process."""

    def __init__(self, root: str, inotify: Any) -> None:
        self.root = root
        self.inotify = inotify
        self.pid = os.getpid()
        self.prefix_of: dict[int, str] = {}
        self.watch_of: dict[str, int] = {}
        # The identity of the folder each watch was added for (None: not known).
        self.identity_of: dict[str, Identity | None] = {}
        # Folders watched since the last reload's scan: a file may have arrived in one
        # between that scan and its watch, so the next reload lists it again.
        self.unsure: set[str] = set()
        self.broken = False

    @classmethod
    def create(cls, root: str) -> FolderWatcher | None:
        """A watcher of root, or None when inotify cannot be used here."""
        if inotify_simple is None:
            return None
        try:
            # inotify_simple finds libc with ctypes.util.find_library, which runs a
            # subprocess: under gevent, from a thread-pool thread, that fails. The running
            # interpreter has libc loaded already, so hand it that one.
            if getattr(inotify_simple, "_libc", None) is None:
                inotify_simple._libc = ctypes.CDLL(None, use_errno=True)
            return cls(root, inotify_simple.INotify(nonblocking=True))
        except Exception as error:  # OSError; under gevent, its subprocess finding libc
            logger.warning("inotify unavailable, reloads scan every file: %s", error)
            return None

    def owned(self) -> bool:
        """Whether this process made the watcher (a forked child must make its own)."""
        return self.pid == os.getpid() and not self.broken

    def sync(self, folders: Iterable[str], identities: Mapping[str, Identity]) -> None:
        """Watch exactly these folders (prefixes relative to root, "" for root itself), each
        the folder of that identity (as the last scan saw it)."""
        wanted = set(folders)
        replaced = [
            prefix
            for prefix, identity in self.identity_of.items()
            if identities.get(prefix, identity) != identity
        ]
        for prefix in (self.watch_of.keys() - wanted).union(replaced):
            watch = self.watch_of.pop(prefix)
            self.identity_of.pop(prefix, None)
            self.prefix_of.pop(watch, None)
            with contextlib.suppress(OSError):  # already gone with its folder
                self.inotify.rm_watch(watch)
        for prefix in wanted - self.watch_of.keys():
            try:
                watch = self.inotify.add_watch(os.path.join(self.root, prefix), MASK)
            except OSError as error:
                if error.errno == 28:  # ENOSPC: max_user_watches reached
                    logger.warning("inotify watch limit reached: reloads scan every file")
                    self.close()
                    return
                continue  # the folder went away: its parent's events say so
            self.watch_of[prefix] = watch
            self.prefix_of[watch] = prefix
            self.identity_of[prefix] = identities.get(prefix)
            self.unsure.add(prefix)

    def changed_folders(self) -> set[str] | None:
        """The folders with events since the last call (plus those watched since the last
        scan); None when a full scan is needed (the event queue overflowed)."""
        try:
            events = self.inotify.read(timeout=0)
        except OSError as error:
            logger.warning("inotify read failed, scanning every file: %s", error)
            self.close()
            return None
        changed, self.unsure = self.unsure, set()
        for event in events:
            if event.mask & OVERFLOW:
                logger.warning("inotify event queue overflowed: scanning every file")
                return None
            prefix = self.prefix_of.get(event.wd)
            if prefix is None:
                continue
            if event.mask & GONE:  # the watch ended with its folder
                del self.prefix_of[event.wd]
                if self.watch_of.get(prefix) == event.wd:
                    del self.watch_of[prefix]
                    self.identity_of.pop(prefix, None)
            changed.add(prefix)
        return changed

    def close(self) -> None:
        """Stop watching; the store then scans every file."""
        self.broken = True
        with contextlib.suppress(OSError):
            self.inotify.close()

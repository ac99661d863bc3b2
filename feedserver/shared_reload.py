"""Workers that share one catalog: the gunicorn master loads the seeds (--preload) and reloads
them for every worker; after a reload that changed what is served it builds the new
catalog's search index, freezes its heap (gc.freeze) and replaces its workers by new ones
forked from it, so the workers share the master's catalog copy-on-write. (A worker that
reloaded on its own would touch every object of the catalog it inherited, which copies the
pages under them: four workers held four catalogs, plus the master's.)

Workers then never reload. Each follows the master's heartbeat (when its last reload
completed, in shared memory) so that its /healthz still says `stale` when the master's
reloads stop, and it is replaced whenever what the master serves or whether it can read
the seeds directory changes: a takedown reaches every worker with the master's next
reload. Used by config/gunicorn.conf.py and `feedserver serve`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import gc
import logging
import mmap
import os
import re
import struct
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any

from .catalog import Catalog
from .scheduler import ReloadScheduler
from .store import CatalogStore, ReloadReport

logger = logging.getLogger(__name__)

# The last completed reload: its start (POSIX time), its duration, and when it completed on
# the monotonic clock (one clock for every process of the machine), which health reads.
_BEAT = struct.Struct("ddd")
# How long the new workers have to boot before the old ones are asked to leave.
BOOT_SECONDS = 60.0
# How often a worker reads the master's heartbeat.
FOLLOW_SECONDS = 1.0


class Heartbeat:
    """The master's last completed reload, in anonymous shared memory its forks inherit."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _BEAT.size)

    def beat(self, report: ReloadReport, completed: float) -> None:
        """Record a completed reload (`completed`: the master store's monotonic time)."""
        started = report.started.timestamp()
        self._memory[:] = _BEAT.pack(started, report.duration_seconds, completed)

    def last(self) -> tuple[datetime, float, float] | None:
        """When the master's last reload started, how long it took and when it completed on
        the monotonic clock; None before one."""
        started, duration, completed = _BEAT.unpack(self._memory[:])
        if not started:
            return None
        return datetime.fromtimestamp(started, UTC), duration, completed


_heartbeat: Heartbeat | None = None  # set in a master that reloads for its workers
# How many times the master has replaced its workers: the first workers say they are up at
# INFO, as a worker's reload job does; their replacements only at DEBUG (the master's
# reload line says what changed).
_replacements = 0


def _parts(app: Any) -> tuple[CatalogStore, ReloadScheduler]:
    store = app.extensions["feedserver.store"]
    scheduler = app.extensions["feedserver.scheduler"]
    return store, scheduler


class MasterReloads:
    """In the gunicorn master: the reload job, and the workers replaced after a change."""

    def __init__(self, app: Any, arbiter: Any) -> None:
        self.store, self.scheduler = _parts(app)
        self.arbiter = arbiter
        self.heartbeat = Heartbeat()
        # What the live workers were forked with.
        self._served: Catalog = self.store.catalog
        self._error: str | None = self.store.degraded_reason

    def start(self) -> None:
        """Before the first workers fork: the whole index, a frozen heap, the reload job."""
        global _heartbeat
        _heartbeat = self.heartbeat
        if self.store.last_report is not None:
            self.heartbeat.beat(self.store.last_report, self._completed())
        self._share()
        self._served, self._error = self.store.catalog, self.store.degraded_reason
        self.store.after_reload.append(self._after_reload)
        self.scheduler.ensure_started()
        logger.info("the master reloads for its workers, which share its catalog")

    def _completed(self) -> float:
        """When the master's last reload completed, on the monotonic clock."""
        completed = self.store.last_completed
        return self.store.monotonic() if completed is None else completed

    def _share(self) -> None:
        """Make the catalog whole and keep the collector off it: forks then share its pages.

        Unfrozen first: what the last fork froze and has since become garbage (the previous
        catalog's cycles) is collected only then, and trimmed away before the next fork."""
        self.store.catalog.search.prepare()
        _fillers.clear()
        gc.unfreeze()
        gc.collect()
        _fill_holes()
        gc.freeze()
        _trim()

    def _after_reload(self, store: CatalogStore, report: ReloadReport) -> None:
        self.heartbeat.beat(report, self._completed())
        if store.catalog is self._served and report.error == self._error:
            return
        # The previous catalog let go of before the collection, so that it is freed first.
        self._served, self._error = store.catalog, report.error
        self._share()
        self._replace_workers()

    def _replace_workers(self) -> None:
        """Fork as many new workers as there are, then retire the old ones (gracefully, the
        oldest first: gunicorn's own rule when there are too many)."""
        global _replacements
        _replacements += 1
        arbiter = self.arbiter
        wanted = arbiter.num_workers
        old = set(arbiter.WORKERS.copy())  # the main loop changes it; copy() is atomic
        started = time.monotonic()
        arbiter.num_workers = wanted * 2
        arbiter.wakeup()
        while time.monotonic() - started < BOOT_SECONDS:
            if len(set(arbiter.WORKERS.copy()) - old) >= wanted:
                break
            time.sleep(0.05)
        arbiter.num_workers = wanted
        arbiter.wakeup()
        # DEBUG: the reload line that caused it is the one line a change logs.
        logger.debug(
            "workers replaced to serve the new catalog in %.3fs", time.monotonic() - started
        )


# Objects that fill the free blocks of Python's allocator before a fork (see _fill_holes).
_fillers: list[object] = []
_SIZE_CLASS = re.compile(rb"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", re.MULTILINE)
_UNUSED_POOLS = re.compile(rb"^(\d+) unused pools \* (\d+) bytes", re.MULTILINE)
_BYTES_HEAD = sys.getsizeof(b"")  # a bytes object of n bytes asks for _BYTES_HEAD + n
_LARGEST_BLOCK = 512  # the allocator's largest size class; bigger objects go to malloc


def _fill_holes() -> None:
    """Fill the free blocks a reload left all over Python's allocator (the previous
    catalog's, between the objects the new one kept) with inert objects the master keeps.
    Else the workers' first allocations land in those holes, in pages they share with the
    master, and each worker copies every such page; filled, they allocate in fresh pages of
    their own, as they would anyway. (The free blocks of each size class are known only from
    the allocator's debugging report.)"""
    stats = _allocator_stats()
    if stats is None:
        return
    for size, free in _SIZE_CLASS.findall(stats):
        length = int(size) - _BYTES_HEAD
        if length >= 2:  # shorter bytes objects are shared singletons, not allocations
            _fillers.extend(bytes(length) for _ in range(int(free)))
    found = _UNUSED_POOLS.search(stats)
    if found:  # the free pools of arenas in use, in blocks of the largest size class
        pools, pool_bytes = int(found[1]), int(found[2])
        blocks = pools * (pool_bytes // _LARGEST_BLOCK - 1)  # less each pool's header
        _fillers.extend(bytes(_LARGEST_BLOCK - _BYTES_HEAD) for _ in range(blocks))


def _allocator_stats() -> bytes | None:
    """What sys._debugmallocstats() writes (to the C stderr), or None where it says nothing.
    (For the millisecond this takes, what another thread writes to stderr goes there too.)"""
    try:
        with tempfile.TemporaryFile() as captured:
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(captured.fileno(), 2)
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            captured.seek(0)
            return captured.read()
    except (OSError, AttributeError):
        return None


def _trim() -> None:
    """Give the C heap's free pages back to the system (what a load or a reload freed: big
    strings and containers live there, not in Python's own arenas), so that the workers
    forked next do not inherit them, and do not copy them when they allocate there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def in_worker(app: Any) -> bool:
    """In a worker forked by a master that reloads for it: follow the master's heartbeat
    instead of reloading (True), or not such a worker (False)."""
    heartbeat = _heartbeat
    if heartbeat is None:
        return False
    store, scheduler = _parts(app)
    scheduler.parent_reloads = True
    threading.Thread(target=_follow, args=(store, heartbeat), daemon=True).start()
    logger.log(
        logging.DEBUG if _replacements else logging.INFO,
        "worker %d serves the master's catalog and follows its reloads",
        os.getpid(),
    )
    return True


def _follow(store: CatalogStore, heartbeat: Heartbeat) -> None:
    """Keep the worker's last report dated by the master's last reload, for /healthz."""
    while True:
        time.sleep(FOLLOW_SECONDS)
        beat = heartbeat.last()
        report = store.last_report
        if beat is None or report is None or beat[0] <= report.started:
            continue
        started, duration, completed = beat
        store.last_report = dataclasses.replace(report, started=started, duration_seconds=duration)
        store.last_completed = completed

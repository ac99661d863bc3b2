"""A snapshot on disk of every parsed seed file, so a start with unchanged seeds parses nothing.

One file per seeds directory in `cache_dir`: a magic line, then msgpack (never pickle: a
snapshot is data, and reading one runs no code) holding a header and one record per seed
file. A record is keyed by the file's path, size, mtime_ns, inode and ctime_ns, and holds
what the store keeps of it: the latest outcome (an article, or the error) and, for a file
that fails now, the last version that parsed. A file that changed in any of those keys is
parsed again; a snapshot that is corrupt, truncated, or written by other code or for other
settings is ignored with a log line.

Processes that start together (gunicorn workers without --preload) take an exclusive lock
around "read the snapshot, parse what changed, write the snapshot": the first one parses,
the others wait and then find a fresh snapshot.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .file_state import FileState
from .snapshot_format import FORMAT_VERSION, code_version, read_from, write_to
from .store import CatalogStore, ReloadReport, collector_paused

logger = logging.getLogger(__name__)

# How long a starting process waits for another one's load before loading on its own.
LOCK_WAIT_SECONDS = 900.0
# After a scheduled reload that changed anything, the snapshot is rewritten once it is this
# many seconds old: writing costs what the whole corpus costs (about a tenth of a reload
# with nothing changed, per file), so it is not done on every reload. A restart meanwhile
# parses what changed since.
REWRITE_SECONDS = 300.0
# `cache_dir: auto` means this folder in the system's temporary folder, one per user.
AUTO = "auto"
# A snapshot is written to `.seeds-<key>.<random>.tmp` and renamed into place. A writer that
# dies (killed, out of memory, a power cut) leaves that file behind (48 MB at 20,000 files):
# the next start removes it, holding the lock that every writer holds while it writes.
TEMPORARY_SUFFIX = ".tmp"
# Temporaries of older versions (`.snapshot-` and mkstemp's eight characters, no key, so no
# lock says whether their writer lives) are removed only once they are this old.
LEGACY_TEMPORARY = re.compile(r"\.snapshot-[a-z0-9_]{8}")
LEGACY_TEMPORARY_SECONDS = 3600.0


def resolve_cache_dir(setting: str) -> Path | None:
    """The snapshot folder a `cache_dir` setting names; None when snapshots are off."""
    if not setting:
        return None
    if setting == AUTO:
        return Path(tempfile.gettempdir()) / f"feedserver-cache-{os.geteuid()}"
    return Path(setting)


def _private_folder(folder: Path) -> bool:
    """Make the folder (owner-only) if needed; refuse one that others could write to, since
    whoever writes a snapshot decides what is served."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        logger.warning("snapshot folder %s cannot be used: %s", folder, error.strerror or error)
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        logger.warning("snapshot folder %s is not a folder of this user; not used", folder)
        return False
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        logger.warning("snapshot folder %s is writable by others; not used", folder)
        return False
    return True


class SeedSnapshot:
    """The snapshot file of one seeds directory, with its lock."""

    def __init__(self, folder: Path, seeds_dir: Path, max_file_bytes: int) -> None:
        self.seeds_dir = os.path.realpath(seeds_dir)
        key = hashlib.blake2b(self.seeds_dir.encode(), digest_size=8).hexdigest()
        self.path = folder / f"seeds-{key}.snapshot"
        self.lock_path = folder / f"seeds-{key}.lock"
        self.temporary_prefix = f".seeds-{key}."
        self.header = {
            "format": FORMAT_VERSION,
            "code": code_version(),
            "seeds_dir": self.seeds_dir,
            "max_file_bytes": max_file_bytes,
        }
        self.written_at = 0.0  # monotonic time of this process's last write
        self.rewrite_seconds = REWRITE_SECONDS
        self.changes_since_write = 0

    @classmethod
    def for_store(cls, store: CatalogStore, cache_dir: str) -> SeedSnapshot | None:
        """The snapshot of a store's seeds directory, or None when snapshots are off or the
        folder cannot safely be used."""
        folder = resolve_cache_dir(cache_dir)
        if folder is None or not _private_folder(folder):
            return None
        return cls(folder, store.seeds_dir, store.max_file_bytes)

    @contextmanager
    def locked(self, wait: bool = True) -> Iterator[bool]:
        """Hold the snapshot's lock (waiting for another process's load, when `wait`); yields
        whether it is held. A lock not had within LOCK_WAIT_SECONDS is gone without."""
        try:
            handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            logger.warning("snapshot lock %s: %s", self.lock_path, error.strerror or error)
            yield False
            return
        try:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            waited = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if not wait:
                        yield False
                        return
                    if time.monotonic() > deadline:
                        logger.warning("snapshot lock still held after %.0f s", LOCK_WAIT_SECONDS)
                        yield False
                        return
                    if not waited:
                        logger.info("waiting for another process to load the seeds")
                        waited = True
                    time.sleep(0.05)
            yield True
        finally:
            os.close(handle)  # closing releases the lock

    def remove_leftovers(self) -> None:
        """Delete the temporaries that interrupted writes of this snapshot left; call it
        holding the lock, so that no live writer has one open. Only regular files of this
        user named as temporaries are removed (see TEMPORARY_SUFFIX, LEGACY_TEMPORARY)."""
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            own = name.startswith(self.temporary_prefix) and name.endswith(TEMPORARY_SUFFIX)
            legacy = not own and LEGACY_TEMPORARY.fullmatch(name) is not None
            if not (own or legacy):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                    continue
                if legacy and time.time() - info.st_mtime < LEGACY_TEMPORARY_SECONDS:
                    continue  # its writer may still be at work
                os.unlink(entry.path)
            except OSError as error:
                logger.warning(
                    "snapshot leftover %s not removed: %s", name, error.strerror or error
                )
                continue
            logger.warning(
                "removed %s (%d bytes), left by an interrupted snapshot write", name, info.st_size
            )

    def read(self) -> dict[str, FileState]:
        """The file states of the snapshot; empty (and logged) when there is none usable."""
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if info.st_uid != os.geteuid():
                    logger.warning("snapshot %s ignored: owned by another user", self.path)
                    return {}
                with collector_paused():
                    return read_from(handle, info.st_size, self.header)
        except FileNotFoundError:
            logger.info("no snapshot of %s yet: parsing every file", self.seeds_dir)
        except OSError as error:
            logger.warning("snapshot %s unreadable: %s", self.path, error.strerror or error)
        except ValueError as error:
            logger.warning("snapshot %s ignored: %s; parsing every file", self.path, error)
        return {}

    def write(self, states: dict[str, FileState]) -> None:
        """Replace the snapshot by one of these states, atomically (temporary file, rename)."""
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=self.temporary_prefix, suffix=TEMPORARY_SUFFIX, dir=self.path.parent
            )
            try:
                with os.fdopen(handle, "wb") as out:
                    # No fsync: a file cut short by a crash fails its checksum and is ignored.
                    size = write_to(out, states, self.header)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            logger.warning("snapshot %s not written: %s", self.path, error.strerror or error)
            return
        except Exception as error:  # a snapshot only saves time: failing to write one is no outage
            logger.warning(
                "snapshot %s not written: %s: %s", self.path, type(error).__name__, error
            )
            return
        self.written_at = time.monotonic()
        self.changes_since_write = 0
        logger.info("snapshot written: %d files, %d bytes", len(states), size)

    def load(self, store: CatalogStore) -> ReloadReport:
        """A process's first load: reuse the snapshot for unchanged files, parse the rest,
        and write the snapshot back when anything was parsed or removed."""
        with self.locked() as held:
            if held:
                self.remove_leftovers()
            states = self.read()
            kept = len(states)
            store.reuse(states)
            report = store.reload()
            fresh = kept and not (report.parsed or report.removed or report.files != kept)
            if held and report.error is None and not fresh:
                self.write(store.file_states())
            elif held:
                self.written_at = time.monotonic()
        store.after_reload.append(self.after_reload)
        return report

    def after_reload(self, store: CatalogStore, report: ReloadReport) -> None:
        """Rewrite the snapshot when files changed since it was written and it is older
        than REWRITE_SECONDS."""
        if report.error is not None:
            return
        self.changes_since_write += report.parsed + report.removed
        if not self.changes_since_write:
            return
        due = time.monotonic() - self.written_at >= self.rewrite_seconds
        if not due or self._written_since(report.started.timestamp()):
            return
        # Another process busy with the snapshot is not waited for: the next reload retries.
        with self.locked(wait=False) as held:
            if held:
                self.write(store.file_states())

    def _written_since(self, moment: float) -> bool:
        """Whether some process (another worker, say) wrote the snapshot after `moment`: it
        then holds every change this process has seen."""
        try:
            return self.path.stat().st_mtime >= moment
        except OSError:
            return False


def load_store(store: CatalogStore, cache_dir: str) -> ReloadReport:
    """Load a store for serving, through its snapshot when `cache_dir` allows one."""
    snapshot = SeedSnapshot.for_store(store, cache_dir)
    if snapshot is None:
        return store.reload()
    return snapshot.load(store)

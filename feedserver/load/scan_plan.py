"""How much of the seeds directory a reload lists: only the folders inotify named since the
last one (watch.py), or everything: at start-up, after an overflow or a lost read, where
inotify is missing, and every FULL_SCAN_EVERY reloads in any case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .tree import Identity
from .watch import FULL_SCAN_EVERY, FolderWatcher


class ScanPlan:
    """The folders each reload of one seeds directory lists; `watch` False lists all."""

    def __init__(self, seeds_dir: str, watch: bool) -> None:
        self.seeds_dir = seeds_dir
        self.watch = watch
        self.watcher: FolderWatcher | None = None
        self._partial_scans_left = 0

    def folders_to_list(self, first_load: bool) -> set[str] | None:
        """The folders the next reload lists again, from inotify's events; None for a full
        scan (the first load, no watcher yet in this process, an overflow, or one every
        FULL_SCAN_EVERY)."""
        if not self.watch or first_load:
            return None  # a start-up load (maybe in a --preload master) watches nothing
        watcher = self.watcher
        if watcher is None or not watcher.owned():
            if watcher is not None:
                watcher.close()  # broken, or this process's copy of its parent's
            self.watcher = FolderWatcher.create(self.seeds_dir)
            self._partial_scans_left = FULL_SCAN_EVERY
            if self.watcher is None:
                self.watch = False  # inotify is not available here: stop asking
            return None
        folders = watcher.changed_folders()
        if folders is None or self._partial_scans_left <= 0:
            # Events up to now are read and dropped: this full scan sees what they say.
            self._partial_scans_left = FULL_SCAN_EVERY
            return None
        self._partial_scans_left -= 1
        return folders

    def follow(self, folders: Iterable[str], identities: Mapping[str, Identity]) -> None:
        """Watch exactly the folders the scan now knows, by device and inode."""
        if self.watcher is not None:
            self.watcher.sync(folders, identities)

    def events_lost(self) -> None:
        """A reload failed after reading events: the next one lists everything."""
        self._partial_scans_left = 0

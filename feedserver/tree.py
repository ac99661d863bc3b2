"""What changed under the seeds directory since the last look, at the cost of one `stat` a file.

The index keeps, per directory, the `SeedFile` of every seed file it last saw. A scan stats
every entry and compares the result with what the index holds, field by field: an unchanged
file costs a dict lookup and four integer comparisons, and no string, tuple or generator
step is made for it. Only new and changed files come back as `SeedFile`s; removed files are
found per directory by the names left over.

The filtering rules (hidden and temporary files, suffixes, symlinks) come from `seeds`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .seeds import _HIDDEN_PREFIXES, _TEMPORARY_SUFFIXES, SEED_SUFFIXES, SeedFile, _inside

logger = logging.getLogger(__name__)

_new_tuple = tuple.__new__
_REGULAR = 0o100000
_FILE_TYPE = 0o170000


@dataclass(slots=True)
class Changes:
    """The outcome of one scan: files to parse, files gone, and the index to keep afterwards."""

    changed: list[SeedFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Per directory prefix ("" for the root, "a/b/" below it), the files seen in it.
    directories: dict[str, dict[str, SeedFile]] = field(default_factory=dict)
    # Every folder listed, seed files in it or not.
    folders: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)

    def keep(self, seed_file: SeedFile) -> None:
        """Index this SeedFile for its path instead of what the scan saw (the reader's own
        look at the file, when it differed), so the next scan compares against it."""
        cut = seed_file.path.rfind("/") + 1
        folder = self.directories.get(seed_file.path[:cut])
        if folder is not None and seed_file.path[cut:] in folder:
            folder[seed_file.path[cut:]] = seed_file


class TreeIndex:
    """The seed files of one directory tree as last seen, by directory and name."""

    def __init__(self) -> None:
        self.directories: dict[str, dict[str, SeedFile]] = {}
        self.folders: set[str] = set()

    @classmethod
    def of(cls, files: Iterable[SeedFile]) -> TreeIndex:
        """An index of these files, as if a scan had seen them (from a snapshot, say)."""
        index = cls()
        for seed_file in files:
            cut = seed_file.path.rfind("/") + 1
            index.directories.setdefault(seed_file.path[:cut], {})[seed_file.path[cut:]] = seed_file
        index.folders = set(index.directories)
        return index

    def __len__(self) -> int:
        return sum(len(files) for files in self.directories.values())

    def paths(self) -> Iterable[str]:
        """Every indexed file's relative path."""
        for prefix, files in self.directories.items():
            for name in files:
                yield prefix + name

    def scan(self, root: str, only: Iterable[str] | None = None) -> Changes:
        """Stat everything under root and say what differs from the index; raises OSError
        if root itself cannot be listed. The index is not changed: `apply` does that.

        With `only` (folder prefixes, from inotify's events), just those folders are listed
        again, and the folders that appeared in them; the rest of the index is kept."""
        real_root = os.path.realpath(root)
        changes = Changes()
        previous = self.directories
        if only is None:
            pending = [("", root)]
        else:
            changes.directories = dict(previous)
            changes.folders = set(self.folders)
            pending = [(prefix, os.path.join(root, prefix)) for prefix in sorted(only)]
        visited: set[str] = set()
        while pending:
            prefix, directory = pending.pop()
            if prefix in visited:
                continue
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                if not prefix:
                    raise
                _drop_folder(prefix, changes)  # gone since its parent listed it
                continue
            except OSError:
                if not prefix:
                    raise
                logger.warning("cannot list seed directory %s", prefix)
                # Keep what was known of it and below: an unreadable folder is not an empty one.
                for below, files in previous.items():
                    if below.startswith(prefix):
                        changes.directories[below] = files
                changes.folders.update(f for f in self.folders if f.startswith(prefix))
                continue
            visited.add(prefix)
            changes.folders.add(prefix)
            known = previous.get(prefix) or {}
            seen: dict[str, SeedFile] = {}
            folders: list[tuple[str, str]] = []
            matched = 0
            get = known.get
            # This loop runs for every file on every reload: it is kept to the bare minimum.
            for entry in entries:
                name = entry.name
                old = get(name)
                if old is not None:
                    # A name indexed before already passed the name rules.
                    try:
                        info = entry.stat()
                    except OSError:
                        continue  # vanished between listing and stat
                    if (
                        info.st_mtime_ns == old[2]
                        and info.st_size == old[1]
                        and info.st_ino == old[3]
                        and info.st_ctime_ns == old[4]
                    ):
                        seen[name] = old
                        matched += 1
                        continue
                found = self._examine(entry, prefix, real_root, folders)
                if found is not None:
                    seen[name] = found
                    changes.changed.append(found)
            if matched != len(known):
                changes.removed += [prefix + name for name in known if name not in seen]
            if seen:
                changes.directories[prefix] = seen
            else:
                changes.directories.pop(prefix, None)
            if only is None:
                pending += folders
                continue
            # A partial scan goes into new folders only, and drops the folders gone from here.
            pending += [folder for folder in folders if folder[0] not in self.folders]
            listed = {folder for folder, _ in folders}
            depth = prefix.count("/") + 1
            for gone in [
                f
                for f in self.folders
                if f.startswith(prefix) and f.count("/") == depth and f not in listed
            ]:
                _drop_folder(gone, changes)
        if only is None:
            for prefix, files in previous.items():
                if prefix not in visited and prefix not in changes.directories:
                    changes.removed += [prefix + name for name in files]
        return changes

    @staticmethod
    def _examine(
        entry: os.DirEntry[str], prefix: str, real_root: str, folders: list[tuple[str, str]]
    ) -> SeedFile | None:
        """The SeedFile of an entry that is new or changed, or None when it is no seed file
        (a folder is added to `folders` instead)."""
        name = entry.name
        if name.startswith(_HIDDEN_PREFIXES) or name.endswith(_TEMPORARY_SUFFIXES):
            return None
        try:
            if entry.is_dir(follow_symlinks=False):
                folders.append((f"{prefix}{name}/", entry.path))
                return None
            if name[name.rfind(".") :].lower() not in SEED_SUFFIXES:
                return None
            if entry.is_symlink() and not _inside(real_root, os.path.realpath(entry.path)):
                logger.warning("skipping %s%s: symlink leads outside the seeds dir", prefix, name)
                return None
            info = entry.stat()
        except OSError:
            return None
        if info.st_mode & _FILE_TYPE != _REGULAR:
            return None
        return _new_tuple(
            SeedFile,
            (prefix + name, info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns),
        )

    def apply(self, changes: Changes) -> None:
        """Make the index what the scan saw."""
        self.directories = changes.directories
        self.folders = changes.folders


def _drop_folder(prefix: str, changes: Changes) -> None:
    """Forget a folder that is gone and everything below it: its files are removed."""
    for below in [d for d in changes.directories if d.startswith(prefix)]:
        changes.removed += [below + name for name in changes.directories.pop(below)]
    changes.folders.difference_update([f for f in changes.folders if f.startswith(prefix)])

"""What changed under the seeds directory since the last look, at the cost of one `stat` a file.

The index keeps, per folder, the `SeedFile` of every seed file it last saw, and the folder's
own stamp (mtime, ctime, inode). A folder whose stamp is unchanged holds the same names as
before (creating, removing or renaming an entry changes it), so it is not listed again: each
known name is stat'ed relative to the folder's descriptor, which costs less than listing it.
A folder whose stamp changed is listed. Either way an unchanged file costs a stat, a dict
step and four integer comparisons; only new and changed files come back as `SeedFile`s.

A stamp taken within RACY_NS of the scan is not trusted (an entry added in the same tick of
the file system's clock would leave it as it was), as git does with its index: that folder is
listed again next time.

Each folder's identity (device and inode) is kept too: a folder replaced by another of the same
name (`mv seeds/sub sub.old && mv sub.new seeds/sub`, or the whole seeds folder swapped the
same way, as atomic deploys do) is listed again, with everything below it, even by a scan
that lists only the folders inotify named.

A name that is not valid UTF-8 (a file or folder named `\xff\xfe.md` by a tool that does not
care) is that entry's problem: it is skipped, and kept in the index by the escaped name
people can read (`unreadable_name`), so that no such name reaches a serialiser, a log or a
page.

The filtering rules (hidden and temporary files, suffixes, symlinks) come from `seeds`.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .files import HIDDEN_PREFIXES, SEED_SUFFIXES, TEMPORARY_SUFFIXES, inside
from .records import SeedFile, new_tuple

logger = logging.getLogger(__name__)


# Like every open under the seeds directory: never blocking, never inherited by a child.
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
# How recent a folder's stamp may be and still be trusted next time (2 s: coarse file
# system clocks tick every few milliseconds, network ones may lag a little).
RACY_NS = 2_000_000_000

# What identifies a folder's state: mtime_ns, ctime_ns, inode.
Stamp = tuple[int, int, int]
# What identifies a folder itself: device, inode.
Identity = tuple[int, int]


def valid_name(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (Python carries undecodable bytes
    as lone surrogates, which no UTF-8 encoder, JSON reader or msgpack packer accepts)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unreadable_name(name: str) -> str:
    """A name that is not valid UTF-8, shown safely: its bytes, the bad ones as `\\xff`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class Changes:
    """The outcome of one scan: files to parse, files gone, and the index to keep afterwards."""

    changed: list[SeedFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Per directory prefix ("" for the root, "a/b/" below it), the files seen in it.
    directories: dict[str, dict[str, SeedFile]] = field(default_factory=dict)
    # Every folder listed, seed files in it or not.
    folders: set[str] = field(default_factory=set)
    # The trusted stamp of each folder seen (see RACY_NS).
    stamps: dict[str, Stamp] = field(default_factory=dict)
    # Per folder, the entries skipped because their names are not UTF-8, shown escaped
    # (a folder's with a trailing "/").
    misnamed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The identity of each folder listed or rechecked.
    identities: dict[str, Identity] = field(default_factory=dict)

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
        self.stamps: dict[str, Stamp] = {}
        self.misnamed: dict[str, tuple[str, ...]] = {}
        self.identities: dict[str, Identity] = {}

    @classmethod
    def of(cls, files: Iterable[SeedFile]) -> TreeIndex:
        """An index of these files, as if a scan had seen them (from a snapshot, say). It has
        no folder stamps: its first scan lists every folder."""
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
        return _Scan(self, root, only).run()

    def apply(self, changes: Changes) -> None:
        """Make the index what the scan saw."""
        self.directories = changes.directories
        self.folders = changes.folders
        self.stamps = changes.stamps
        self.misnamed = changes.misnamed
        self.identities = changes.identities

    def misnamed_entries(self) -> list[str]:
        """Every entry skipped for a name that is not UTF-8, escaped, by path."""
        return sorted(name for names in self.misnamed.values() for name in names)


class _Scan:
    """One walk of the tree against an index (see TreeIndex.scan)."""

    def __init__(self, index: TreeIndex, root: str, only: Iterable[str] | None) -> None:
        self.index = index
        self.root = root
        self.real_root = os.path.realpath(root)
        self.changes = Changes()
        self.partial = only is not None
        self.trusted_before = time.time_ns() - RACY_NS
        self.visited: set[str] = set()
        self.subfolders: dict[str, list[str]] = {}
        if only is None:
            self.pending = [("", root)]
            self.subfolders = _subfolders(index.folders)
        else:
            # A partial scan lists the named folders (inotify saw them change) and keeps the rest.
            self.changes.directories = dict(index.directories)
            self.changes.folders = set(index.folders)
            self.changes.stamps = dict(index.stamps)
            self.changes.misnamed = dict(index.misnamed)
            self.changes.identities = dict(index.identities)
            self.pending = [(prefix, os.path.join(root, prefix)) for prefix in sorted(only)]

    def run(self) -> Changes:
        while self.pending:
            prefix, directory = self.pending.pop()
            if prefix not in self.visited:
                self._visit(prefix, directory)
        if not self.partial:
            changes = self.changes
            for prefix, files in self.index.directories.items():
                if prefix not in self.visited and prefix not in changes.directories:
                    changes.removed += [prefix + name for name in files]
        return self.changes

    def _visit(self, prefix: str, directory: str) -> None:
        try:
            descriptor = os.open(directory, _OPEN_FOLDER)
        except OSError as error:
            self._unlistable(prefix, error)
            return
        try:
            info = os.fstat(descriptor)
            self.changes.identities[prefix] = (info.st_dev, info.st_ino)
            stamp = (info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
            same = not self.partial and self.index.stamps.get(prefix) == stamp
            if same:
                self._recheck(prefix, directory, descriptor)
            else:
                self._list(prefix, directory)
        except OSError as error:
            self._unlistable(prefix, error)
            return
        finally:
            os.close(descriptor)
        self.visited.add(prefix)
        self.changes.folders.add(prefix)
        if max(stamp[0], stamp[1]) < self.trusted_before:
            self.changes.stamps[prefix] = stamp
        else:
            self.changes.stamps.pop(prefix, None)

    def _unlistable(self, prefix: str, error: OSError) -> None:
        if not prefix:
            raise error
        changes = self.changes
        if isinstance(error, FileNotFoundError | NotADirectoryError):
            _drop_folder(prefix, changes)  # gone since its parent listed it
            return
        logger.warning("cannot list seed directory %s", prefix)
        # Keep what was known of it and below: an unreadable folder is not an empty one.
        for below, files in self.index.directories.items():
            if below.startswith(prefix):
                changes.directories[below] = files
        changes.folders.update(f for f in self.index.folders if f.startswith(prefix))
        changes.misnamed.update(
            (f, names) for f, names in self.index.misnamed.items() if f.startswith(prefix)
        )
        changes.identities.update(
            (f, known) for f, known in self.index.identities.items() if f.startswith(prefix)
        )
        changes.stamps.pop(prefix, None)  # list it next time

    def _recheck(self, prefix: str, directory: str, descriptor: int) -> None:
        """A folder whose names are as before: stat each known file by name."""
        known = self.index.directories.get(prefix)
        self.pending += [
            (sub, os.path.join(self.root, sub)) for sub in self.subfolders.get(prefix, ())
        ]
        misnamed = self.index.misnamed.get(prefix)
        if misnamed:
            self.changes.misnamed[prefix] = misnamed
        if not known:
            return
        differing = []
        stat_at = os.stat
        # This loop runs for every file on every reload: it is kept to the bare minimum.
        for name, old in known.items():
            try:
                info = stat_at(name, dir_fd=descriptor)
            except OSError:
                differing.append(name)
                continue
            if not (
                info.st_mtime_ns == old[2]
                and info.st_size == old[1]
                and info.st_ino == old[3]
                and info.st_ctime_ns == old[4]
            ):
                differing.append(name)
        if not differing:
            self.changes.directories[prefix] = known  # shared: `keep` only edits copies
            return
        seen = dict(known)
        for name in differing:
            found = self._seed_file(prefix, name, os.path.join(directory, name))
            if found is None:
                del seen[name]
                self.changes.removed.append(prefix + name)
            else:
                seen[name] = found
                self.changes.changed.append(found)
        if seen:
            self.changes.directories[prefix] = seen
        else:
            self.changes.directories.pop(prefix, None)

    def _seed_file(self, prefix: str, name: str, path: str) -> SeedFile | None:
        """A known name whose stat changed: its SeedFile, or None when it is no seed file now."""
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                if not inside(self.real_root, os.path.realpath(path)):
                    _outside_warning(prefix, name)
                    return None
                info = os.stat(path)
        except OSError:
            return None
        return _regular_seed_file(prefix + name, info)

    def _list(self, prefix: str, directory: str) -> None:
        """A folder that may hold other names than before: list it."""
        entries = list(os.scandir(directory))
        changes = self.changes
        known = self.index.directories.get(prefix) or {}
        seen: dict[str, SeedFile] = {}
        folders: list[tuple[str, str]] = []
        misnamed: list[str] = []
        matched = 0
        get = known.get
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
            found = self._examine(entry, prefix, folders, misnamed)
            if found is not None:
                seen[name] = found
                changes.changed.append(found)
        if matched != len(known):
            changes.removed += [prefix + name for name in known if name not in seen]
        if seen:
            changes.directories[prefix] = seen
        else:
            changes.directories.pop(prefix, None)
        if misnamed:
            changes.misnamed[prefix] = tuple(misnamed)
        else:
            changes.misnamed.pop(prefix, None)
        if not self.partial:
            self.pending += folders
        else:
            self._follow_partial(prefix, folders)

    def _follow_partial(self, prefix: str, folders: list[tuple[str, str]]) -> None:
        """A partial scan goes into new folders and replaced ones only, and drops the folders
        gone from here."""
        known_folders = self.index.folders
        self.pending += [
            folder
            for folder in folders
            if folder[0] not in known_folders or self._replaced(*folder)
        ]
        listed = {folder for folder, _ in folders}
        depth = prefix.count("/") + 1
        for gone in [
            f
            for f in known_folders
            if f.startswith(prefix) and f.count("/") == depth and f not in listed
        ]:
            _drop_folder(gone, self.changes)

    def _replaced(self, prefix: str, directory: str) -> bool:
        """Whether a known folder is now another one (renamed over, or swapped)."""
        try:
            info = os.stat(directory, follow_symlinks=False)
        except OSError:
            return False  # gone: the caller drops it
        return self.index.identities.get(prefix) != (info.st_dev, info.st_ino)

    def _examine(
        self,
        entry: os.DirEntry[str],
        prefix: str,
        folders: list[tuple[str, str]],
        misnamed: list[str],
    ) -> SeedFile | None:
        """The SeedFile of an entry that is new or changed, or None when it is no seed file
        (a folder is added to `folders` instead, a name that is not UTF-8 to `misnamed`)."""
        name = entry.name
        if name.startswith(HIDDEN_PREFIXES) or name.endswith(TEMPORARY_SUFFIXES):
            return None
        try:
            if entry.is_dir(follow_symlinks=False):
                if not valid_name(name):
                    _misnamed(prefix, name + "/", misnamed)
                    return None
                folders.append((f"{prefix}{name}/", entry.path))
                return None
            if name[name.rfind(".") :].lower() not in SEED_SUFFIXES:
                return None
            if not valid_name(name):
                _misnamed(prefix, name, misnamed)
                return None
            if entry.is_symlink() and not inside(self.real_root, os.path.realpath(entry.path)):
                _outside_warning(prefix, name)
                return None
            info = entry.stat()
        except OSError:
            return None
        return _regular_seed_file(prefix + name, info)


def _regular_seed_file(path: str, info: os.stat_result) -> SeedFile | None:
    """The SeedFile of what stat said, when it is a regular file."""
    if stat.S_IFMT(info.st_mode) != stat.S_IFREG:
        return None
    return new_tuple(
        SeedFile, (path, info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
    )


def _misnamed(prefix: str, name: str, misnamed: list[str]) -> None:
    shown = prefix + unreadable_name(name)
    misnamed.append(shown)
    logger.warning("skipping %s: its name is not valid UTF-8", shown)


def _outside_warning(prefix: str, name: str) -> None:
    logger.warning("skipping %s%s: symlink leads outside the seeds dir", prefix, name)


def _subfolders(folders: Iterable[str]) -> dict[str, list[str]]:
    """Each known folder's direct subfolders: what an unchanged folder would have listed."""
    children: dict[str, list[str]] = defaultdict(list)
    for folder in folders:
        if folder:
            children[folder[: folder.rstrip("/").rfind("/") + 1]].append(folder)
    return children


def _drop_folder(prefix: str, changes: Changes) -> None:
    """Forget a folder that is gone and everything below it: its files are removed."""
    for below in [d for d in changes.directories if d.startswith(prefix)]:
        changes.removed += [below + name for name in changes.directories.pop(below)]
    changes.folders.difference_update([f for f in changes.folders if f.startswith(prefix)])
    for below in [d for d in changes.stamps if d.startswith(prefix)]:
        del changes.stamps[below]
    for below in [d for d in changes.misnamed if d.startswith(prefix)]:
        del changes.misnamed[below]
    for below in [d for d in changes.identities if d.startswith(prefix)]:
        del changes.identities[below]

"""Which files are seed files, and reading one safely: a regular file only (never a FIFO or
a device swapped in after the scan), within the size limit, as UTF-8."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .records import SeedError

SEED_SUFFIXES = frozenset({".txt", ".md", ".yaml", ".yml"})
# Hidden files and folders, and the temporary files editors leave beside the ones they edit.
HIDDEN_PREFIXES = (".", "#", "~")
TEMPORARY_SUFFIXES = ("~", "#")


def inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


# Non-blocking, so that a FIFO swapped in after the scan cannot hang the reload in open();
# no controlling terminal from a device; not inherited by processes the server starts.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _kind_of(path: str | Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "not a file"
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a file")


class NotARegularFile(SeedError):
    """The path no longer holds the regular file the scan saw: it vanished, or something
    else (a FIFO, a device, a socket) was put in its place."""


def _open_seed(path: str | Path) -> int:
    """A descriptor of the file, opened without blocking; SeedError saying why it cannot be."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise NotARegularFile("file vanished before it could be read") from None
    except PermissionError:
        raise SeedError("permission denied") from None
    except OSError as error:
        if error.errno == errno.ENXIO:  # what opening a socket says
            raise NotARegularFile(f"is {_kind_of(path)}, not a regular file; not read") from None
        raise SeedError(f"cannot be read ({error.strerror})") from None


def read_seed_bytes(path: str | Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and what `fstat` said of it; refuses anything that is not a
    regular file, and refuses a file over max_bytes unread."""
    descriptor = _open_seed(path)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a file")  # fstat, no race
            raise NotARegularFile(f"is {kind}, not a regular file; not read")
        size = info.st_size
        if size > max_bytes:
            raise SeedError(f"file is {size} bytes, over the limit of {max_bytes}")
        # Ask for the size fstat gave (plus one byte, to see growth): asking for the whole
        # limit would allocate a buffer of max_bytes for every file.
        data = os.read(descriptor, size + 1)
        while size < len(data) <= max_bytes:  # it grew while being read: read on, to the limit
            more = os.read(descriptor, max_bytes + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as error:
        raise SeedError(f"cannot be read ({error.strerror})") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise SeedError(f"file is over the limit of {max_bytes} bytes")
    return data, info


def decode_seed_text(data: bytes) -> str:
    """UTF-8 text (a byte order mark is dropped); SeedError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SeedError(f"not valid UTF-8 (byte {error.start})") from None


def read_seed_text(path: str | Path, max_bytes: int) -> str:
    """Read a seed file as UTF-8 text, refusing it unread when it is over max_bytes."""
    return decode_seed_text(read_seed_bytes(path, max_bytes)[0])

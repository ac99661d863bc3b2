"""Prometheus' multiprocess files with their disk blocks allocated before they are mapped.

prometheus_client keeps each process's values in a file it maps into memory, made with
`truncate`: a sparse file, whose blocks the disk only provides when a page is first
written through the mapping. On a full disk that write is a SIGBUS, not an error: with the
metrics folder on a full disk every worker died at its first request, and gunicorn booted
new ones 320 times in 30 s. Here the blocks are allocated first (posix_fallocate); when
they cannot be, the process keeps its values in anonymous memory instead (its figures are
then missing from /metrics, which says nothing worse) and logs it once."""

from __future__ import annotations

import logging
import mmap
import os
import struct
from typing import Any

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict

logger = logging.getLogger(__name__)

INITIAL_BYTES = 1 << 20  # prometheus_client's own first size
_USED = struct.Struct("i")  # the file's first word: how many bytes are in use
_warned: set[int] = set()  # processes that said so already


def _allocate(handle: int, size: int) -> bool:
    """Give the file `size` bytes of real blocks; False when the disk has no room."""
    try:
        os.posix_fallocate(handle, 0, size)
    except OSError as error:
        if os.getpid() in _warned:
            return False
        _warned.add(os.getpid())
        logger.warning(
            "metrics file cannot grow (%s): this process's figures stay in memory", error.strerror
        )
        return False
    return True


class AllocatedMmapedDict(MmapedDict):
    """prometheus_client's MmapedDict, never mapping a hole of a file."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if read_mode:
            super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]
            return
        handle = os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fresh = os.fstat(handle).st_size == 0
            room = not fresh or _allocate(handle, INITIAL_BYTES)
        finally:
            os.close(handle)
        if room:
            super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]
            return
        os.unlink(filename)  # an empty file would break /metrics' reading of the folder
        self._in_memory(filename, bytes(8))

    def _in_memory(self, filename: str, contents: bytes) -> None:
        """Go on in anonymous memory, from these contents of the mapping."""
        capacity = max(INITIAL_BYTES, len(contents))
        memory = mmap.mmap(-1, capacity)
        memory[: len(contents)] = contents
        if getattr(self, "_f", None):
            self._m.close()
            self._f.close()
        self._f: Any = None
        self._fname = filename
        self._capacity = capacity
        self._m = memory
        self._used = max(8, _USED.unpack_from(memory, 0)[0])
        _USED.pack_into(memory, 0, self._used)
        if not hasattr(self, "_positions"):
            self._positions: dict[str, int] = {}

    def _init_value(self, key: str) -> None:
        """Add a key, allocating the blocks of a grown file before mapping them."""
        encoded = key.encode("utf-8")
        padded = encoded + (b" " * (8 - (len(encoded) + 4) % 8))
        entry = struct.pack(f"i{len(padded)}sdd".encode(), len(encoded), padded, 0.0, 0.0)
        needed = self._used + len(entry)
        if needed > self._capacity:
            capacity = self._capacity
            while needed > capacity:
                capacity *= 2
            if self._f is not None and _allocate(self._f.fileno(), capacity):
                self._m = mmap.mmap(self._f.fileno(), capacity)
                self._capacity = capacity
            else:
                contents = bytes(self._m[: self._used])
                self._in_memory(self._fname, contents)
                if capacity > self._capacity:
                    grown = mmap.mmap(-1, capacity)
                    grown[: self._used] = self._m[: self._used]
                    self._m, self._capacity = grown, capacity
        self._m[self._used : needed] = entry
        self._used = needed
        _USED.pack_into(self._m, 0, self._used)
        self._positions[key] = self._used - 16


def install() -> None:
    """Make prometheus_client's multiprocess values use allocated files (before any is made)."""
    values.MmapedDict = AllocatedMmapedDict  # type: ignore[attr-defined]

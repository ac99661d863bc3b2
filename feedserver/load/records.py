"""What reading the seeds directory yields: a file found by the scan (SeedFile), the outcome
of reading it (ParsedSeed), and the error a file that cannot be an article raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..models import Article


class SeedError(Exception):
    """A seed file cannot become an article; the message says why in plain words."""


# Makes a SeedFile at C speed, skipping the named tuple's Python-level __new__.
new_tuple = tuple.__new__


class SeedFile(NamedTuple):
    """A file found under the seeds directory, with what `stat` said of it.

    A named tuple rather than a dataclass: a reload makes one per file, 100,000 at a time.
    """

    path: str  # relative to the seeds directory, with forward slashes
    size: int
    mtime_ns: int
    inode: int
    # Changes on every write and rename, even one that puts size and mtime back.
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class ParsedSeed:
    """The outcome of reading one file: an article, or an error; warnings either way."""

    file: SeedFile
    article: Article | None
    error: str | None
    warnings: tuple[str, ...]
    # For a file that failed: whether its raw front matter still says `published: true` (and
    # nothing else for `published`). Only then may its last good version still be served.
    still_published: bool = False

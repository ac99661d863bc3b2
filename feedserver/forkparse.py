"""Parsing a cold load's seed files in two processes: a forked child parses the second half
and hands its results back pickled, while this process parses the first. For the static
export, which loads once and then renders in two processes too; a server parses as before."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from . import store
from .load.records import ParsedSeed, SeedFile
from .load.seed_file import parse_seed_file

logger = logging.getLogger(__name__)

# Below this many files, a fork and a pickle cost more than the child saves.
SHARED_FILES = 1000


def parse_in_two(root: Path, files: Sequence[SeedFile], max_bytes: int) -> Iterable[ParsedSeed]:
    """The files parsed, in order, half of them by a forked child."""
    if len(files) < SHARED_FILES or not hasattr(os, "fork"):
        return store.parse_serially(root, files, max_bytes)
    middle = len(files) // 2
    theirs = files[middle:]
    reader, writer = os.pipe()
    try:
        child = os.fork()
    except OSError as error:  # no process to be had: parse them all here
        logger.warning("parsing: cannot fork (%s); parsing in one process", error)
        os.close(reader)
        os.close(writer)
        return store.parse_serially(root, files, max_bytes)
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(reader)
            results = [parse_seed_file(root, seed_file, max_bytes) for seed_file in theirs]
            with os.fdopen(writer, "wb") as pipe:
                pickle.dump(results, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
    os.close(writer)
    mine = [parse_seed_file(root, seed_file, max_bytes) for seed_file in files[:middle]]
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(child, 0)
    handed: list[ParsedSeed] = []
    if status == 0:
        with contextlib.suppress(Exception):
            handed = pickle.loads(data)
    if len(handed) != len(theirs):
        logger.warning("parsing: the child process failed (status %s); parsing here", status)
        handed = [parse_seed_file(root, seed_file, max_bytes) for seed_file in theirs]
    return [*mine, *_same_files(theirs, handed)]


def _same_files(files: Sequence[SeedFile], results: list[ParsedSeed]) -> Iterator[ParsedSeed]:
    """The results with the very SeedFile objects that were asked for where they are equal:
    the store tells a file that changed while it was read by identity."""
    for seed_file, result in zip(files, results, strict=True):
        yield dataclasses.replace(result, file=seed_file) if result.file == seed_file else result


@contextlib.contextmanager
def shared() -> Iterator[None]:
    """Within it, a store's reloads parse their files in two processes."""
    before = store.parse_files
    store.parse_files = parse_in_two
    try:
        yield
    finally:
        store.parse_files = before

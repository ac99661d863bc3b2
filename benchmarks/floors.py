"""The floors: the least any reader of a seed tree has to do, timed as bare loops.

- parse floor: walk the tree, read each file's bytes, cut out the front matter (the text
  between the first two `---` lines) and load it with PyYAML's CSafeLoader; nothing is kept.
- stat floor: recurse with os.scandir and stat every file; nothing is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import yaml

LOADER = yaml.CSafeLoader


def _parse(path: str) -> None:
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.find(b"\n---", 4)
    yaml.load(data[4:end] if data.startswith(b"---\n") and end > 0 else data, Loader=LOADER)


def parse_tree(root: str) -> int:
    """Read and parse the front matter of every non-hidden file under root; returns the count."""
    count = 0
    for directory, folders, files in os.walk(root):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith("."):
                _parse(os.path.join(directory, name))
                count += 1
    return count


def parse_files(root: str, paths: Iterable[str]) -> int:
    """Read and parse the front matter of the given files (relative to root)."""
    count = 0
    for path in paths:
        _parse(os.path.join(root, path))
        count += 1
    return count


def stat_tree(root: str) -> int:
    """os.scandir recursion with a stat of every non-hidden file; returns the count."""
    count = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def timed(function: Callable[..., object], *args: object) -> dict[str, float]:
    """Call function(*args): wall-clock seconds, and this process's CPU seconds (user+sys).

    CPU time is what other processes on a shared machine cannot inflate; on a quiet machine
    with the files in the page cache the two agree.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def cold_floors(root: str) -> dict[str, dict[str, float]]:
    """Run in a fresh process: the parse floor, then the stat floor, of the whole tree."""
    return {"parse": timed(parse_tree, root), "stat": timed(stat_tree, root)}

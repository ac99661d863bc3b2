"""Seed trees for the benchmarks, generated once per size and seed and kept in a work folder.

A tree is `WORKDIR/seeds-<count>-seed<seed>/`, described by `WORKDIR/seeds-<count>-seed<seed>.json`
(written last, so a tree whose generation was interrupted is made again). A benchmark that edits
files marks the tree dirty while it does, and puts the original bytes back afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import generate

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "feedserver-benchmarks"


@dataclass(frozen=True, slots=True)
class SeedTree:
    """A generated seeds directory: how many files, and how many bytes they take on disk."""

    root: Path
    count: int
    seed: int
    total_bytes: int

    @property
    def manifest(self) -> Path:
        """The JSON file that says the tree is complete and clean."""
        return self.root.with_suffix(".json")


def _generator_digest() -> str:
    """Changes whenever the generator's code does, so old trees are made again."""
    return hashlib.blake2b(Path(generate.__file__).read_bytes(), digest_size=8).hexdigest()


def seed_paths(root: Path) -> list[str]:
    """Every non-hidden file under root, relative to it, in a stable order."""
    found = []
    for directory, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        relative = os.path.relpath(directory, root)
        for name in sorted(files):
            if not name.startswith("."):
                found.append(name if relative == "." else f"{relative}/{name}")
    return found


def _total_bytes(root: Path) -> int:
    return sum((root / path).stat().st_size for path in seed_paths(root))


def seed_tree(workdir: Path, count: int, seed: int = 1, related: int | None = None) -> SeedTree:
    """The tree of count files for this seed, generated now unless a clean one is kept.
    `related` makes the related-heavy corpus: that many related items on every article."""
    kind = "" if related is None else f"-related{related}"
    root = workdir / f"seeds-{count}-seed{seed}{kind}"
    manifest = root.with_suffix(".json")
    expected = {
        "count": count,
        "seed": seed,
        "related": related,
        "generator": _generator_digest(),
    }
    try:
        kept = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if all(kept.get(key) == value for key, value in expected.items()) and not kept.get("dirty"):
        return SeedTree(root, count, seed, int(kept["total_bytes"]))
    manifest.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    print(f"generating {count:,} seed files in {root} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    generate.generate(root, count, seed=seed, related=related)
    total = _total_bytes(root)
    manifest.write_text(json.dumps({**expected, "total_bytes": total}), encoding="utf-8")
    print(
        f"  done in {time.perf_counter() - started:.1f} s, {total / 1e6:.1f} MB",
        file=sys.stderr,
        flush=True,
    )
    return SeedTree(root, count, seed, total)


def warm(root: Path) -> None:
    """Read every file once, so the figures that follow are measured with a hot page cache."""
    for path in seed_paths(root):
        with open(root / path, "rb") as handle:
            while handle.read(1 << 20):
                pass


def sample_paths(root: Path, seed: int, fraction: float) -> list[str]:
    """A deterministic share of the files under root (at least one), spread over all folders."""
    paths = seed_paths(root)
    chosen = random.Random(seed).sample(paths, max(1, round(len(paths) * fraction)))
    return sorted(chosen)


def rewrite_titles(root: Path, paths: list[str], tag: str) -> None:
    """Edit each file as an editor would: a changed title, a new size and mtime."""
    for path in paths:
        target = root / path
        text = target.read_text(encoding="utf-8")
        target.write_text(text.replace('title: "', f'title: "{tag} ', 1), encoding="utf-8")


@contextmanager
def editing(tree: SeedTree, paths: list[str]) -> Iterator[None]:
    """Allow the files to be edited inside the block; their original bytes come back after.

    The tree is marked dirty meanwhile, so an interrupted run makes it again next time.
    """
    originals = {path: (tree.root / path).read_bytes() for path in paths}
    manifest = json.loads(tree.manifest.read_text(encoding="utf-8"))
    tree.manifest.write_text(json.dumps({**manifest, "dirty": True}), encoding="utf-8")
    try:
        yield
    finally:
        for path, data in originals.items():
            (tree.root / path).write_bytes(data)
        tree.manifest.write_text(json.dumps(manifest), encoding="utf-8")

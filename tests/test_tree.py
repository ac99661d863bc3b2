"""The tree scan: a folder whose stamp is unchanged is not listed again, only its known files
are stat'ed; a recently changed folder is always listed; and whatever happens to the tree, an
index kept up to date scan after scan says what a fresh scan says."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver.load import tree
from feedserver.load.records import SeedFile
from feedserver.load.tree import TreeIndex

# Long enough for any file system clock's tick, short enough for a quick test.
TEST_RACY_NS = 50_000_000


@pytest.fixture
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "RACY_NS", TEST_RACY_NS)


def settle() -> None:
    """Wait until every stamp made so far is old enough to be trusted."""
    time.sleep(TEST_RACY_NS / 1e9 * 1.5)


class ListingSpy:
    """Counts the folders a scan lists with os.scandir."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.listed: list[str] = []
        real = os.scandir

        def scandir(path: str) -> Iterator[os.DirEntry[str]]:
            self.listed.append(path)
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)


def write(root: Path, path: str, text: str = "---\ntitle: x\n---\n") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def scanned(index: TreeIndex, root: Path) -> tuple[set[str], set[str]]:
    changes = index.scan(str(root))
    index.apply(changes)
    return {f.path for f in changes.changed}, set(changes.removed)


def fresh_view(root: Path) -> dict[str, tuple[int, int, int, int]]:
    index = TreeIndex()
    index.apply(index.scan(str(root)))
    return {f.path: (f.size, f.mtime_ns, f.inode, f.ctime_ns) for f in _files(index)}


def _files(index: TreeIndex) -> list[SeedFile]:
    return [f for files in index.directories.values() for f in files.values()]


@pytest.mark.usefixtures("short_racy_window")
def test_an_edit_in_place_is_found_without_listing_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("a.md", "one/b.md", "one/two/c.md", "three/d.md"):
        write(tmp_path, path)
    index = TreeIndex()
    assert scanned(index, tmp_path) == ({"a.md", "one/b.md", "one/two/c.md", "three/d.md"}, set())
    settle()
    assert scanned(index, tmp_path) == (set(), set())  # this scan trusts every folder's stamp
    spy = ListingSpy(monkeypatch)
    write(tmp_path, "one/two/c.md", "---\ntitle: y\n---\n")  # same size, new mtime and ctime
    assert scanned(index, tmp_path) == ({"one/two/c.md"}, set())
    assert spy.listed == []


@pytest.mark.usefixtures("short_racy_window")
def test_a_new_or_removed_name_lists_its_folder_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("a.md", "one/b.md", "three/d.md"):
        write(tmp_path, path)
    index = TreeIndex()
    scanned(index, tmp_path)
    settle()
    scanned(index, tmp_path)
    spy = ListingSpy(monkeypatch)
    write(tmp_path, "one/new.md")
    (tmp_path / "three" / "d.md").unlink()
    assert scanned(index, tmp_path) == ({"one/new.md"}, {"three/d.md"})
    assert sorted(Path(p).name for p in spy.listed) == ["one", "three"]


def test_a_folder_changed_moments_ago_is_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its stamp could stay the same when a name is added in the same tick of the file
    system's clock, so it is not trusted: the next scan lists the folder."""
    write(tmp_path, "one/b.md")
    index = TreeIndex()
    scanned(index, tmp_path)
    assert "one/" not in index.stamps
    spy = ListingSpy(monkeypatch)
    scanned(index, tmp_path)
    assert any(Path(p).name == "one" for p in spy.listed)


@pytest.mark.usefixtures("short_racy_window")
@pytest.mark.parametrize("seed", range(3))
def test_an_index_kept_up_to_date_agrees_with_a_fresh_scan(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    folders = ["", "a/", "a/b/", "c/"]
    index = TreeIndex()
    for step in range(30):
        for _ in range(rng.randint(1, 4)):
            _random_change(tmp_path, rng, folders, step)
        if rng.random() < 0.7:
            settle()  # let some scans trust the stamps, others not
        before = {f.path: f for f in _files(index)}
        changed, removed = scanned(index, tmp_path)
        after = {f.path: (f.size, f.mtime_ns, f.inode, f.ctime_ns) for f in _files(index)}
        assert after == fresh_view(tmp_path)
        assert removed == set(before) - set(after)
        assert changed == {
            path for path, stamp in after.items() if path not in before or before[path][1:] != stamp
        }


def _random_change(root: Path, rng: random.Random, folders: list[str], step: int) -> None:
    existing = sorted(str(p.relative_to(root)) for p in root.rglob("*.md"))
    action = rng.choice(["create", "edit", "edit", "delete", "rename", "rmdir", "ignored"])
    if action == "create" or not existing:
        write(root, f"{rng.choice(folders)}f{step}-{rng.randint(0, 99)}.md")
    elif action == "edit":
        path = rng.choice(existing)
        write(root, path, "---\ntitle: " + "z" * rng.randint(1, 3) + "\n---\n")
    elif action == "delete":
        (root / rng.choice(existing)).unlink()
    elif action == "rename":
        source = root / rng.choice(existing)
        target = root / f"{rng.choice(folders)}moved{step}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
    elif action == "rmdir":
        shutil.rmtree(root / rng.choice(folders[1:]), ignore_errors=True)
    else:
        write(root, f"{rng.choice(folders)}.hidden{step}.md")

"""Reloads driven by inotify: only folders with events are listed again, and every kind of
change is still seen; a full scan stays the fallback (overflow, every few reloads)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from feedserver.load import watch
from feedserver.load.tree import Changes, TreeIndex
from feedserver.store import CatalogStore

inotify_simple = pytest.importorskip("inotify_simple", reason="inotify is Linux-only")


class ScanSpy:
    """Records which folders each scan was asked to list (None: a full scan)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[set[str] | None] = []
        real = TreeIndex.scan

        def scan(index: TreeIndex, root: str, only: Iterable[str] | None = None) -> Changes:
            self.calls.append(None if only is None else set(only))
            return real(index, root, only)

        monkeypatch.setattr(TreeIndex, "scan", scan)


@pytest.fixture
def watched(
    tmp_seeds: Path, write_seed: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[CatalogStore, ScanSpy]:
    """A watching store over a.md and sub/b.md, past its first reloads."""
    write_seed("a.md")
    write_seed("sub/b.md")
    spy = ScanSpy(monkeypatch)
    store = CatalogStore(tmp_seeds, 1 << 20, "Test", watch=True)
    for _ in range(3):  # start-up load; first watches; every newly watched folder listed once
        store.reload()
    assert spy.calls == [None, None, {"", "sub/"}]
    return store, spy


def watcher_of(store: CatalogStore) -> watch.FolderWatcher:
    """The store's inotify watcher, which the tests make miss or overflow."""
    watcher = store.scan_plan.watcher
    assert watcher is not None
    return watcher


def urls(store: CatalogStore) -> set[str]:
    return {article.url for article in store.catalog.everything.articles}


def url(name: str) -> str:
    return f"https://example.com/articles/{name}"


def test_no_change_lists_no_folder(watched: tuple[CatalogStore, ScanSpy]) -> None:
    store, spy = watched
    report = store.reload()
    assert spy.calls[-1] == set()
    assert (report.parsed, report.files, report.rebuilt) == (0, 2, False)


def test_edit_create_delete_rename_are_seen(
    watched: tuple[CatalogStore, ScanSpy], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    store, spy = watched
    write_seed("sub/b.md", title="Edited")
    store.reload()
    assert spy.calls[-1] == {"sub/"}
    assert "Edited" in {a.title for a in store.catalog.everything.articles}
    write_seed("c.md")
    store.reload()
    assert spy.calls[-1] == {""}
    assert url("c") in urls(store)
    (tmp_seeds / "a.md").unlink()
    store.reload()
    assert url("a") not in urls(store)
    os.rename(tmp_seeds / "c.md", tmp_seeds / "sub" / "moved.md")
    report = store.reload()
    assert spy.calls[-1] == {"", "sub/"}
    assert sorted(store.file_states()) == ["sub/b.md", "sub/moved.md"]
    assert (report.parsed, report.removed) == (1, 1)


def test_new_removed_and_renamed_subfolders_are_seen(
    watched: tuple[CatalogStore, ScanSpy], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    store, _spy = watched
    write_seed("new/deep/d.md")
    store.reload()
    assert sorted(store.file_states()) == ["a.md", "new/deep/d.md", "sub/b.md"]
    # A file written in the new folder right after the reload that found it: the folder's
    # watch may have come too late for it, so the next reload lists the folder again.
    write_seed("new/deep/e.md")
    store.reload()
    assert "new/deep/e.md" in store.file_states()
    os.rename(tmp_seeds / "new", tmp_seeds / "renamed")
    store.reload()
    assert sorted(store.file_states()) == [
        "a.md",
        "renamed/deep/d.md",
        "renamed/deep/e.md",
        "sub/b.md",
    ]
    write_seed("renamed/deep/f.md")  # the renamed folder is watched too
    store.reload()
    assert "renamed/deep/f.md" in store.file_states()
    shutil.rmtree(tmp_seeds / "renamed")
    store.reload()
    assert sorted(store.file_states()) == ["a.md", "sub/b.md"]
    assert urls(store) == {url("a"), url("b")}


def test_overflow_falls_back_to_a_full_scan(
    watched: tuple[CatalogStore, ScanSpy],
    write_seed: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, spy = watched
    overflow = inotify_simple.Event(wd=-1, mask=watch.OVERFLOW, cookie=0, name="")
    monkeypatch.setattr(watcher_of(store).inotify, "read", lambda timeout=None: [overflow])
    write_seed("c.md")
    store.reload()
    assert spy.calls[-1] is None
    assert url("c") in urls(store)


def test_full_scan_every_few_reloads_finds_what_events_missed(
    watched: tuple[CatalogStore, ScanSpy],
    write_seed: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, spy = watched
    monkeypatch.setattr(watcher_of(store), "changed_folders", lambda: set())  # events lost
    write_seed("c.md")
    for _ in range(watch.FULL_SCAN_EVERY + 1):
        store.reload()
    assert None in spy.calls[3:]
    assert url("c") in urls(store)


def test_without_inotify_every_reload_is_a_full_scan(
    tmp_seeds: Path, write_seed: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "inotify_simple", None)
    write_seed("a.md")
    spy = ScanSpy(monkeypatch)
    store = CatalogStore(tmp_seeds, 1 << 20, "Test", watch=True)
    for _ in range(3):
        store.reload()
    write_seed("b.md")
    store.reload()
    assert spy.calls == [None] * 4
    assert urls(store) == {url("a"), url("b")}


# --- folders replaced by rename, as atomic deploys do -------------------------------------


def write_release(folder: Path, release: int) -> None:
    """One release of a seeds tree: a.md, sub/s.md and sub/deep/d.md, titled by release."""
    for name in ("a.md", "sub/s.md", "sub/deep/d.md"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = Path(name).stem
        path.write_text(
            f"---\ntitle: {stem} of release {release}\nwebUrl: {url(stem)}\n"
            "publishedDateTime: 2024-01-01\npublished: true\n---\n",
            encoding="utf-8",
        )


def watched_release(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CatalogStore, ScanSpy]:
    """A watching store over release 0 in root, past its first reloads (as in `watched`:
    every folder watched and listed once)."""
    write_release(root, 0)
    spy = ScanSpy(monkeypatch)
    store = CatalogStore(root, 1 << 20, "Test", watch=True)
    for _ in range(3):
        store.reload()
    return store, spy


def titles(store: CatalogStore) -> set[str]:
    return {article.title for article in store.catalog.everything.articles}


def test_a_seeds_folder_swapped_by_rename_is_watched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seeds"
    store, spy = watched_release(root, monkeypatch)
    for release in (1, 2):
        write_release(tmp_path / "seeds.new", release)
        os.rename(root, tmp_path / f"seeds.old{release}")
        os.rename(tmp_path / "seeds.new", root)
        store.reload()  # the next reload sees the whole new release, from inotify's events
        assert spy.calls[-1] is not None
        assert titles(store) == {f"{stem} of release {release}" for stem in "asd"}
        store.reload()  # the new folders are watched from here on
    # A takedown in a subfolder of the new release: the reload after it takes it down.
    text = (root / "sub" / "s.md").read_text(encoding="utf-8")
    (root / "sub" / "s.md").write_text(text.replace("published: true", "published: false"))
    store.reload()
    assert spy.calls[-1] == {"sub/"}
    assert url("s") not in urls(store)
    # Edits anywhere are still seen at once; the old releases are no longer watched.
    (tmp_path / "seeds.old2" / "a.md").write_text("---\ntitle: [broken\n---\n")
    (root / "sub" / "deep" / "d.md").write_text(
        (root / "sub" / "deep" / "d.md").read_text().replace("release 2", "release 3")
    )
    store.reload()
    assert spy.calls[-1] == {"sub/deep/"}
    assert "d of release 3" in titles(store)
    store.reload()
    assert spy.calls[-1] == set()


def test_a_subfolder_swapped_by_rename_is_listed_and_watched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seeds"
    store, spy = watched_release(root, monkeypatch)
    write_release(tmp_path / "next", 1)
    os.rename(tmp_path / "next" / "sub", root / ".sub.new")  # hidden until it is swapped in
    os.rename(root / "sub", tmp_path / "sub.old")
    os.rename(root / ".sub.new", root / "sub")
    store.reload()
    assert spy.calls[-1] is not None
    assert titles(store) == {"a of release 0", "s of release 1", "d of release 1"}
    store.reload()
    (root / "sub" / "deep" / "d.md").write_text(
        (root / "sub" / "deep" / "d.md").read_text().replace("release 1", "release 2")
    )
    store.reload()
    assert spy.calls[-1] == {"sub/deep/"}
    assert "d of release 2" in titles(store)

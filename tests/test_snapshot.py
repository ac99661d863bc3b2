"""The parsed-seed snapshot: a restart with unchanged seeds parses nothing, a changed file is
parsed again, a bad snapshot is ignored, and processes starting together parse once."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import feedparser
import pytest

from feedserver import snapshot, snapshot_format
from feedserver.load import bodies
from feedserver.snapshot import SeedSnapshot, load_store
from feedserver.snapshot_format import MAGIC, decode, encode
from feedserver.store import CatalogStore, ReloadReport

from .conftest import ROOT, TEST_BASE_URL, GunicornServer

MAX_BYTES = 1 << 20
DEADLINE = 60.0  # generous: the machine may be loaded


def new_store(seeds: Path) -> CatalogStore:
    return CatalogStore(seeds, MAX_BYTES, "Test")


def start(seeds: Path, cache: Path) -> tuple[CatalogStore, ReloadReport]:
    """A process's first load of `seeds` through the snapshot in `cache`."""
    store = new_store(seeds)
    return store, load_store(store, str(cache))


def served(store: CatalogStore) -> list[tuple[str, str]]:
    return [(a.url, a.title) for a in store.catalog.everything.articles]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def snapshot_file(cache: Path) -> Path:
    (path,) = cache.glob("*.snapshot")
    return path


def test_round_trip_keeps_every_article_error_and_warning(seeds_dir: Path, cache: Path) -> None:
    (seeds_dir / "broken.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    first, report = start(seeds_dir, cache)
    assert report.parsed == report.files
    states = first.file_states()
    snapshot = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    again = decode(encode(states, snapshot.header), snapshot.header)
    assert again.keys() == states.keys()
    for path, state in states.items():
        assert again[path].latest == state.latest
        assert again[path].good == state.good
    # Shared as the parser shares them: one object per topic and per provider.
    articles = [s.latest.article for s in again.values() if s.latest.article]
    topics = {t.key: t for a in articles for t in a.topics}
    assert all(topics[t.key] is t for a in articles for t in a.topics)


def test_restart_with_unchanged_seeds_parses_nothing(seeds_dir: Path, cache: Path) -> None:
    first, report = start(seeds_dir, cache)
    assert report.parsed == report.files > 0
    second, report = start(seeds_dir, cache)
    assert report.parsed == 0
    assert report.files == len(first.file_states())
    assert served(second) == served(first)
    assert second.catalog.problems == first.catalog.problems
    assert second.catalog.topics.keys() == first.catalog.topics.keys()


def test_only_changed_files_are_parsed(
    tmp_seeds: Path, cache: Path, write_seed: Callable[..., Path]
) -> None:
    paths = [write_seed(f"{n}.md", mtime=1_600_000_000) for n in range(5)]
    start(tmp_seeds, cache)
    # Same size, new mtime.
    text = paths[0].read_text(encoding="utf-8")
    paths[0].write_text(text.replace("Test article", "Best article"), encoding="utf-8")
    os.utime(paths[0], (1_600_000_100, 1_600_000_100))
    # Same size and mtime, new inode: replaced by a rename, as editors and deploys do.
    info = paths[1].stat()
    replacement = tmp_seeds / ".new"
    replacement.write_text(
        paths[1].read_text(encoding="utf-8").replace("Test article", "Next article"),
        encoding="utf-8",
    )
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, paths[1])
    assert paths[1].stat().st_size == info.st_size
    assert paths[1].stat().st_mtime_ns == info.st_mtime_ns
    # Removed.
    paths[2].unlink()
    store, report = start(tmp_seeds, cache)
    assert (report.parsed, report.removed, report.files) == (2, 1, 4)
    titles = sorted(title for _, title in served(store))
    assert titles == ["Best article 0", "Next article 1", "Test article 3", "Test article 4"]
    # What was parsed now is in the snapshot written by that start.
    _, report = start(tmp_seeds, cache)
    assert report.parsed == 0


def test_failed_file_stays_failed_and_withheld_after_restart(
    tmp_seeds: Path, cache: Path, write_seed: Callable[..., Path], write_file: Callable[..., Path]
) -> None:
    write_seed("good.md")
    write_seed("hidden.md", published=False)
    write_file("bad.md", "---\ntitle: [unclosed\n---\n")
    first, _ = start(tmp_seeds, cache)
    second, report = start(tmp_seeds, cache)
    assert report.parsed == 0
    assert report.failed == 1
    assert (
        served(second)
        == served(first)
        == [("https://example.com/articles/good", "Test article good")]
    )
    fatal = {p.file for p in second.catalog.problems if p.fatal}
    assert fatal == {"bad.md"}


def test_scheduled_reload_rewrites_the_snapshot_only_when_it_is_old_enough(
    tmp_seeds: Path, cache: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.md")
    store, _ = start(tmp_seeds, cache)
    written = snapshot_file(cache).stat().st_mtime_ns
    write_seed("b.md")
    assert store.reload().parsed == 1
    assert snapshot_file(cache).stat().st_mtime_ns == written  # not yet: written just now
    (hook,) = store.after_reload
    hook.__self__.rewrite_seconds = 0  # type: ignore[attr-defined]
    write_seed("c.md")
    assert store.reload().parsed == 1
    _, report = start(tmp_seeds, cache)
    assert (report.parsed, report.files) == (0, 3)


class EditedRestart(NamedTuple):
    """A store, the reload after an edit, and a second store started from the snapshot."""

    store: CatalogStore
    reload: ReloadReport
    again: CatalogStore
    restart: ReloadReport


@pytest.fixture
def edit_b_and_restart(
    tmp_seeds: Path,
    cache: Path,
    write_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], EditedRestart]:
    """Start a store over tmp_seeds, overwrite b.md with a text, reload (the scheduled reload
    rewrites the snapshot at once here) and start a second store from that snapshot."""
    monkeypatch.setattr(snapshot, "REWRITE_SECONDS", 0.0)

    def run(text: str) -> EditedRestart:
        store, _ = start(tmp_seeds, cache)
        write_file("b.md", text)
        reload = store.reload()
        again, restart = start(tmp_seeds, cache)
        return EditedRestart(store, reload, again, restart)

    return run


def test_stale_file_keeps_its_last_good_version_across_a_restart(
    write_seed: Callable[..., Path], edit_b_and_restart: Callable[[str], EditedRestart]
) -> None:
    write_seed("a.md")
    write_seed("b.md", mtime=1_600_000_000)
    run = edit_b_and_restart("---\ntitle: [unclosed\npublished: true\n---\n")
    assert run.reload.stale == ("b.md",)
    assert run.restart.parsed == 0
    assert run.restart.stale == ("b.md",)
    assert served(run.again) == served(run.store)


def test_withheld_file_stays_withheld_across_a_restart(
    write_seed: Callable[..., Path], edit_b_and_restart: Callable[[str], EditedRestart]
) -> None:
    write_seed("a.md")
    write_seed("b.md")
    # A broken edit that no longer says `published: true`: fail closed, the article goes.
    run = edit_b_and_restart("---\ntitle: [unclosed\n---\n")
    assert run.reload.withheld == ("b.md",)
    assert run.restart.parsed == 0
    assert run.restart.withheld == ("b.md",)
    expected = [("https://example.com/articles/a", "Test article a")]
    assert served(run.again) == served(run.store) == expected


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-40] + bytes(40), id="corrupt"),
        pytest.param(lambda data: b"not a snapshot", id="foreign"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_damaged_snapshot_is_ignored_with_a_log_line(
    seeds_dir: Path,
    cache: Path,
    damage: Callable[[bytes], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, _ = start(seeds_dir, cache)
    path = snapshot_file(cache)
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="feedserver.snapshot"):
        second, report = start(seeds_dir, cache)
    assert report.parsed == report.files
    assert served(second) == served(first)
    assert any("ignored" in record.getMessage() for record in caplog.records)
    # The bad snapshot was replaced by a good one.
    _, report = start(seeds_dir, cache)
    assert report.parsed == 0


@pytest.mark.parametrize("key", ["format", "code", "max_file_bytes"])
def test_snapshot_of_another_version_or_setting_is_ignored(
    seeds_dir: Path, cache: Path, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    start(seeds_dir, cache)
    path = snapshot_file(cache)
    snapshot = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    store = new_store(seeds_dir)
    store.reload()
    other = {**snapshot.header, key: 0}
    path.write_bytes(encode(store.file_states(), other))
    with caplog.at_level(logging.WARNING, logger="feedserver.snapshot"):
        _, report = start(seeds_dir, cache)
    assert report.parsed == report.files
    assert any(f"another {key}" in record.getMessage() for record in caplog.records)


def test_snapshot_starts_with_a_magic_line_and_no_pickle(seeds_dir: Path, cache: Path) -> None:
    start(seeds_dir, cache)
    data = snapshot_file(cache).read_bytes()
    assert data.startswith(MAGIC)
    assert b"\x80\x04\x95" not in data[:64]  # a pickle's protocol-4 opening


def test_empty_cache_dir_turns_snapshots_off(seeds_dir: Path, tmp_path: Path) -> None:
    store = new_store(seeds_dir)
    report = load_store(store, "")
    assert report.parsed == report.files
    assert not list(tmp_path.rglob("*.snapshot"))


def test_folder_writable_by_others_is_refused(
    seeds_dir: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="feedserver.snapshot"):
        start(seeds_dir, cache)
        _, report = start(seeds_dir, cache)
    assert report.parsed == report.files
    assert not list(cache.glob("*.snapshot"))
    assert any("writable by others" in record.getMessage() for record in caplog.records)


STARTER = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from feedserver.snapshot import load_store
from feedserver.store import CatalogStore
store = CatalogStore(sys.argv[1], 1 << 20, "Test")
report = load_store(store, sys.argv[2])
print(json.dumps({"parsed": report.parsed, "files": report.files}), flush=True)
"""


def test_processes_starting_together_parse_once(seeds_dir: Path, cache: Path) -> None:
    # Hold the lock, so both processes are surely waiting at once when it is released.
    snapshot = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    cache.mkdir(mode=0o700)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with snapshot.locked():
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", STARTER, str(seeds_dir), str(cache)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(2)
        ]
        # Both report that they wait for the lock (read line by line; nothing else logs yet).
        for process in processes:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "waiting for another process" in line, line
    results = []
    for process in processes:
        out, err = process.communicate(timeout=DEADLINE)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    files = results[0]["files"]
    assert files > 0
    assert sorted(r["parsed"] for r in results) == [0, files]


def test_restart_under_gunicorn_serves_the_same_feeds_without_parsing(
    seeds_dir: Path, tmp_path: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    env = {"FEEDSERVER_CACHE_DIR": str(tmp_path / "cache"), "FEEDSERVER_BASE_URL": TEST_BASE_URL}
    first = start_gunicorn(seeds_dir, env=env, workers=2)
    before = {path: first.fetch(path)[2] for path in ("/feed.rss", "/topics/ai.rss")}
    first.stop()
    parsing = [line for line in first.output().splitlines() if "reload: files=" in line]
    assert sum(" parsed=0 " not in line for line in parsing) == 1, parsing
    second = start_gunicorn(seeds_dir, env=env, workers=2)
    deadline = time.monotonic() + DEADLINE
    while second.output().count("reload: files=") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # both workers have loaded
    for path, body in before.items():
        status, _, again = second.fetch(path)
        assert status == 200
        assert again == body
        assert feedparser.parse(again).entries
    loads = [line for line in second.output().splitlines() if "reload: files=" in line]
    assert len(loads) >= 2
    assert all(" parsed=0 " in line for line in loads), loads


# --- the per-directory scan that reloads (and restarts) compare against ---------------------


def test_reload_finds_new_and_removed_folders_and_ctime_changes(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("top.md")
    inner = write_seed("a/b/inner.md")
    store = new_store(tmp_seeds)
    assert store.reload().files == 2
    write_seed("c/d/new.md")
    report = store.reload()
    assert (report.parsed, report.removed, report.files) == (1, 0, 3)
    inner.chmod(0o600)  # only the ctime changes
    assert store.reload().parsed == 1
    shutil.rmtree(tmp_seeds / "a")
    report = store.reload()
    assert (report.parsed, report.removed, report.files) == (0, 1, 2)
    assert sorted(store.file_states()) == ["c/d/new.md", "top.md"]
    assert store.reload().rebuilt is False  # nothing changed: the catalog is kept as it is


def test_unreadable_folder_keeps_its_files(
    tmp_seeds: Path, write_seed: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_seed("a/one.md")
    write_seed("a/b/two.md")
    write_seed("c/three.md")
    store = new_store(tmp_seeds)
    store.reload()
    real_scandir = os.scandir
    unreadable = str(tmp_seeds / "a")

    def scandir(path: str) -> Any:
        if os.fspath(path) == unreadable:  # as a folder without read permission would
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # what feedserver.tree calls
    (tmp_seeds / "c" / "three.md").unlink()
    report = store.reload()
    assert (report.removed, report.files) == (1, 2)
    assert sorted(store.file_states()) == ["a/b/two.md", "a/one.md"]


# --- what the snapshot's version covers ----------------------------------------------------


def _feedserver_imports(module: str) -> set[str]:
    """The feedserver modules (dotted, below the package) a module imports by relative
    imports, transitively."""
    found: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        package = name.split(".")[:-1]
        tree = ast.parse((ROOT / "feedserver" / f"{name.replace('.', '/')}.py").read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                targets = [".".join([*base, node.module])]
            else:
                targets = [".".join([*base, alias.name]) for alias in node.names]
            for target in targets:
                source = ROOT / "feedserver" / f"{target.replace('.', '/')}.py"
                if source.exists() and target not in found:
                    found.add(target)
                    pending.append(target)
    return found


def test_every_module_that_builds_articles_and_bodies_is_in_the_version() -> None:
    assert _feedserver_imports("load.seed_file") <= set(snapshot_format.SHAPING_MODULES)
    shaping = set(snapshot_format.SHAPING_MODULES)
    assert {"load.seed_file", "load.bodies", "store", "snapshot_format"} <= shaping


@pytest.mark.parametrize("module", snapshot_format.SHAPING_MODULES)
def test_a_change_to_any_shaping_module_changes_the_version(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot_format.code_version()
    loaded = importlib.import_module(f"feedserver.{module}")
    copy = tmp_path / f"{module}.py"
    copy.write_bytes(Path(loaded.__file__ or "").read_bytes() + b"\n# another release\n")
    monkeypatch.setattr(loaded, "__file__", str(copy))
    assert snapshot_format.code_version() != before


@pytest.mark.parametrize("distribution", snapshot_format.SHAPING_LIBRARIES)
def test_another_release_of_any_shaping_library_changes_the_version(
    distribution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot_format.code_version()
    real = importlib.metadata.version

    def version(name: str) -> str:
        return "999.0" if name.lower() == distribution.lower() else real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert snapshot_format.code_version() != before


def test_a_sanitizer_change_is_not_served_from_an_old_snapshot(
    tmp_seeds: Path,
    cache: Path,
    tmp_path: Path,
    write_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = "title: Pictured\nwebUrl: https://example.com/p\npublishedDateTime: 2024-01-01\n"
    write_file("a.md", f"---\n{fields}published: true\n---\n![a picture](/picture.png)\n")
    first, _ = start(tmp_seeds, cache)
    assert "<img" in first.catalog.everything.articles[0].body_html
    # The next release drops `img` from the allow-list: its file and its behaviour change.
    source = Path(bodies.__file__ or "").read_text(encoding="utf-8")
    assert '"a", "img", "figure"' in source
    copy = tmp_path / "bodies.py"
    copy.write_text(source.replace('"a", "img", "figure"', '"a", "figure"'), encoding="utf-8")
    monkeypatch.setattr(bodies, "__file__", str(copy))
    monkeypatch.setattr(bodies, "ALLOWED_TAGS", bodies.ALLOWED_TAGS - {"img"})
    with caplog.at_level(logging.WARNING, logger="feedserver.snapshot"):
        second, report = start(tmp_seeds, cache)
    assert report.parsed == report.files == 1
    assert "another code" in caplog.text
    assert "<img" not in second.catalog.everything.articles[0].body_html


# --- leftovers of an interrupted write ------------------------------------------------------

KILLED_WRITER = """
import os, signal, sys
from feedserver import snapshot
from feedserver.store import CatalogStore

def write_and_die(out, states, header):
    out.write(b"x" * 100_000)
    out.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a power cut would

snapshot.write_to = write_and_die
snapshot.load_store(CatalogStore(sys.argv[1], 1 << 20, "Test"), sys.argv[2])
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", script, *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=DEADLINE, check=False
    )


def _names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


def test_a_write_killed_midway_leaves_nothing_after_the_next_start(
    seeds_dir: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = _run(KILLED_WRITER, str(seeds_dir), str(cache))
    assert result.returncode == -signal.SIGKILL, result.stderr
    snap = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    leftovers = _names(cache) - {snap.lock_path.name}
    assert len(leftovers) == 1 and snap.path.name not in leftovers
    with caplog.at_level(logging.WARNING, logger="feedserver.snapshot"):
        _, report = start(seeds_dir, cache)
    assert report.parsed == report.files
    assert _names(cache) == {snap.lock_path.name, snap.path.name}
    assert "left by an interrupted snapshot write" in caplog.text


def test_only_this_users_own_temporaries_are_removed(
    seeds_dir: Path, cache: Path, tmp_path: Path
) -> None:
    cache.mkdir(mode=0o700)
    snap = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    own = cache / f"{snap.temporary_prefix}abc123{snapshot.TEMPORARY_SUFFIX}"
    legacy_old = cache / ".snapshot-abcd1234"
    legacy_new = cache / ".snapshot-efgh5678"  # its writer (an older release) may be at work
    kept = {
        ".seeds-0123456789abcdef.abc123.tmp",  # another seeds directory's: its own lock says
        "notes.txt",
        legacy_new.name,
        f"{snap.temporary_prefix}link{snapshot.TEMPORARY_SUFFIX}",  # not a regular file
    }
    for path in (own, legacy_old, legacy_new, cache / "notes.txt"):
        path.write_bytes(b"x" * 100)
    (cache / ".seeds-0123456789abcdef.abc123.tmp").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.write_text("keep me")
    (cache / f"{snap.temporary_prefix}link{snapshot.TEMPORARY_SUFFIX}").symlink_to(outside)
    hour_ago = time.time() - 2 * snapshot.LEGACY_TEMPORARY_SECONDS
    os.utime(legacy_old, (hour_ago, hour_ago))
    start(seeds_dir, cache)
    assert _names(cache) == kept | {snap.lock_path.name, snap.path.name}
    assert outside.read_text() == "keep me"


LOCK_HOLDER = """
import fcntl, os, sys
handle = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_a_live_writers_temporary_is_kept(
    seeds_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir(mode=0o700)
    snap = SeedSnapshot(cache, seeds_dir, MAX_BYTES)
    writing = cache / f"{snap.temporary_prefix}live{snapshot.TEMPORARY_SUFFIX}"
    writing.write_bytes(b"being written")
    monkeypatch.setattr(snapshot, "LOCK_WAIT_SECONDS", 0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(snap.lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        _, report = start(seeds_dir, cache)  # gives up waiting, loads without the lock
        assert report.parsed == report.files
        assert writing.read_bytes() == b"being written"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=DEADLINE)

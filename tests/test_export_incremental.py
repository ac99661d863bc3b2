"""Incremental static export: a rebuild renders only the files whose inputs changed, and
its site is, file by file, the one a fresh full build makes of the same seeds."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from benchmarks.generate import generate
from feedserver import export, forkparse, store
from feedserver.export import MANIFEST, build_site

from .conftest import TEST_BASE_URL

ROUNDS = 8


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def listed(root: Path) -> set[str]:
    lines = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    return {line.split("\t")[0] for line in lines}


def touch_later(path: Path, rng: random.Random) -> None:
    """A new mtime, so that even a same-size edit within one clock tick is seen."""
    moment = path.stat().st_mtime + rng.randint(1, 10**6)
    os.utime(path, (moment, moment))


def edit(seeds: Path, rng: random.Random, step: int) -> str:
    """One random change to the seeds: an edit, a deletion, a rename, (un)publishing, or a
    new file; what it did, for the failure message."""
    files = sorted(path for path in seeds.rglob("*.txt"))
    path = rng.choice(files)
    text = path.read_text(encoding="utf-8")
    action = rng.choice(("title", "topic", "date", "delete", "rename", "publish", "add"))
    if action == "title":
        path.write_text(text.replace('title: "', f'title: "Edited {step} ', 1), encoding="utf-8")
    elif action == "topic":
        topics = text.index("topics:\n") + len("topics:\n")
        path.write_text(text[:topics] + f"  - Fresh Topic {step % 3}\n" + text[topics:])
    elif action == "date":
        start = text.index("publishedDateTime: ") + len("publishedDateTime: ")
        year = rng.choice(("2019", "2021", "2023"))
        path.write_text(text[:start] + year + text[start + 4 :], encoding="utf-8")
    elif action == "delete":
        path.unlink()
        return f"{action} {path.name}"
    elif action == "rename":
        target = seeds / rng.choice(("000", "001", "new")) / f"renamed-{step}.txt"
        target.parent.mkdir(exist_ok=True)
        path.rename(target)
        return f"{action} {path.name} -> {target.relative_to(seeds)}"
    elif action == "publish":
        flipped = (
            text.replace("published: true", "published: false")
            if "published: true" in text
            else text.replace("published: false", "published: true")
        )
        path.write_text(flipped, encoding="utf-8")
    else:
        copy = path.with_name(f"added-{step}.txt")
        copy.write_text(text.replace("/article-", f"/added-{step}-article-"), encoding="utf-8")
        touch_later(copy, rng)
        return f"{action} {copy.name}"
    touch_later(path, rng)
    return f"{action} {path.name}"


@pytest.mark.parametrize("workers", [1, 2])
def test_incremental_builds_match_fresh_full_builds_after_random_changes(
    tmp_path: Path,
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(export, "PARALLEL_FILES", 1)  # the fork path even on a small site
    seeds = tmp_path / "seeds"
    generate(seeds, 60, seed=7, topics=6, providers=4)
    rng = random.Random(20 + workers)
    app = make_app(seeds, base_url=TEST_BASE_URL)
    site = tmp_path / "site"
    first = build_site(app, site, workers=workers)
    assert first.skipped == 0 and not first.failed
    for step in range(ROUNDS):
        done = [edit(seeds, rng, step * 10 + n) for n in range(rng.randint(1, 4))]
        app.extensions["feedserver.store"].reload()
        report = build_site(app, site, workers=workers)
        fresh = tmp_path / f"fresh-{step}"
        build_site(make_app(seeds, base_url=TEST_BASE_URL), fresh, workers=1)
        ours, theirs = files_under(site), files_under(fresh)
        assert sorted(ours) == sorted(theirs), done
        for name, body in theirs.items():
            assert ours[name] == body, (name, done)
        assert listed(site) == listed(fresh), done
        assert not report.failed, report.failed
        # Most of the site did not change: those files were not rendered again (an edit of
        # an unpublished file may change nothing at all).
        assert report.skipped > 0, (report, done)
        assert report.written + report.skipped <= report.files


def test_a_rebuild_with_nothing_changed_renders_nothing(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    build_site(app, site)
    rendered: list[str] = []
    fetch = export._fetch

    def counted(requests: Any, route: export.Route) -> bytes:
        rendered.append(route.path)
        return fetch(requests, route)

    monkeypatch.setattr(export, "_fetch", counted)
    again = build_site(app, site)
    assert rendered == [] and again.skipped == again.files == again.unchanged
    assert again.written == 0


def test_a_damaged_file_or_new_settings_are_rendered_again(
    app: Flask, tmp_path: Path, make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    site = tmp_path / "site"
    build_site(app, site)
    good = (site / "feed.rss").read_bytes()
    (site / "feed.rss").write_bytes(good[:100])  # cut short by hand: not the size built
    (site / "topics" / "ai.atom").unlink()
    report = build_site(app, site)
    assert (site / "feed.rss").read_bytes() == good
    assert (site / "topics" / "ai.atom").is_file()
    assert report.written == 2 and report.skipped == report.files - 2
    retitled = make_app(seeds_dir, base_url=TEST_BASE_URL, site_title="Another title")
    report = build_site(retitled, site)
    assert report.skipped == 0  # settings are an input of every file
    assert b"Another title" in (site / "feed.rss").read_bytes()


def test_parsing_in_two_processes_serves_what_one_does(
    tmp_path: Path, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 40, seed=3, topics=5, providers=3)
    (seeds / "000" / "broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    cold = {"base_url": TEST_BASE_URL, "cache_dir": ""}  # no snapshot: both parse every file
    alone = make_app(seeds, **cold).extensions["feedserver.store"]
    monkeypatch.setattr(forkparse, "SHARED_FILES", 1)
    forks: list[int] = []
    fork = os.fork

    def counted_fork() -> int:
        child = fork()
        if child:
            forks.append(child)
        return child

    monkeypatch.setattr(os, "fork", counted_fork)
    with forkparse.shared():
        shared = make_app(seeds, **cold).extensions["feedserver.store"]
    assert len(forks) == 1
    assert store.parse_files is store.parse_serially  # only inside the block
    assert shared.articles_read() == alone.articles_read()
    assert shared.catalog.problems == alone.catalog.problems
    assert [a.url for a in shared.catalog.everything.articles] == [
        a.url for a in alone.catalog.everything.articles
    ]

"""Reloading the seeds directory: incremental, atomic, keeping the last good state."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
import yaml
from flask import Flask

from feedserver import create_app
from feedserver.store import CatalogStore

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


class Clock:
    """A clock that tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def article(n: int, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": f"Article number {n}",
        "excerpt": f"Excerpt of article {n}",
        "publishedDateTime": (NOW - timedelta(hours=n)).isoformat(),
        "webUrl": f"https://news.example.com/{n}",
        "published": True,
        "provider": {"name": "Example News", "domain": "news.example.com"},
        "topics": ["Reload"],
    }
    data.update(fields)
    return data


def write(directory: Path, name: str, data: dict[str, object]) -> Path:
    path = directory / name
    path.write_text("---\n" + yaml.safe_dump(data) + "---\n", encoding="utf-8")
    return path


def bump_mtime(path: Path, seconds: int = 5) -> None:
    """Make a rewrite visible even on filesystems with coarse timestamps."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 10**9))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    directory = tmp_path / "seeds"
    directory.mkdir()
    for n in range(1, 4):
        write(directory, f"{n}.txt", article(n))
    return directory


@pytest.fixture
def store(seeds: Path) -> CatalogStore:
    store = CatalogStore(seeds, 1 << 20, "Test", clock=Clock())
    store.reload()
    return store


def urls(store: CatalogStore) -> set[str]:
    return {a.url for a in store.catalog.everything.articles}


def test_reload_with_no_change_parses_nothing_and_keeps_the_catalog(store: CatalogStore) -> None:
    before = store.catalog
    report = store.reload()
    assert (report.files, report.parsed, report.unchanged, report.removed) == (3, 0, 3, 0)
    assert report.rebuilt is False
    assert store.catalog is before


def test_only_new_and_changed_files_are_parsed(store: CatalogStore, seeds: Path) -> None:
    write(seeds, "4.txt", article(4))
    changed = write(seeds, "1.txt", article(1, title="Changed title"))
    bump_mtime(changed)
    report = store.reload()
    assert (report.files, report.parsed, report.unchanged) == (4, 2, 2)
    titles = {a.title for a in store.catalog.everything.articles}
    assert "Changed title" in titles and "Article number 4" in titles


def test_unpublishing_and_deleting_remove_the_article(store: CatalogStore, seeds: Path) -> None:
    bump_mtime(write(seeds, "1.txt", article(1, published=False)))
    (seeds / "2.txt").unlink()
    report = store.reload()
    assert report.removed == 1
    assert urls(store) == {"https://news.example.com/3"}


def test_a_broken_rewrite_keeps_the_last_good_version(store: CatalogStore, seeds: Path) -> None:
    path = seeds / "2.txt"
    # Still saying `published: true` (tests/test_hostile_seeds.py has the broken takedowns).
    path.write_text("---\ntitle: [unclosed\npublished: true\n---\n", encoding="utf-8")
    bump_mtime(path)
    report = store.reload()
    assert report.stale == ("2.txt",)
    assert report.failed == 1
    assert "https://news.example.com/2" in urls(store)
    problems = {p.file: p.reason for p in store.catalog.problems}
    assert "serving its last good version" in problems["2.txt"]
    # Fixed again: served as the new version, no longer stale.
    write(path.parent, "2.txt", article(2, title="Fixed"))
    bump_mtime(path, 10)
    report = store.reload()
    assert report.stale == ()
    assert "Fixed" in {a.title for a in store.catalog.everything.articles}


def test_a_new_file_that_fails_is_reported_and_skipped(store: CatalogStore, seeds: Path) -> None:
    (seeds / "bad.txt").write_text("---\ntitle: no url\n---\n", encoding="utf-8")
    report = store.reload()
    assert report.failed == 1 and report.stale == ()
    assert len(urls(store)) == 3
    assert any(p.file == "bad.txt" and p.fatal for p in store.catalog.problems)


def test_a_missing_directory_keeps_the_catalog_and_recovers(
    store: CatalogStore, seeds: Path
) -> None:
    before = store.catalog
    moved = seeds.with_name("moved")
    seeds.rename(moved)
    report = store.reload()
    degraded_reason = store.degraded_reason
    assert report.error is not None and degraded_reason is not None
    assert str(seeds) not in report.error  # no path of the machine
    assert store.catalog is before
    moved.rename(seeds)
    store.reload()
    assert store.degraded_reason is None
    assert len(urls(store)) == 3


def test_time_passing_publishes_a_scheduled_article(store: CatalogStore, seeds: Path) -> None:
    write(seeds, "future.txt", article(9, publishedDateTime=(NOW + timedelta(minutes=5))))
    store.reload()
    assert "https://news.example.com/9" not in urls(store)
    assert store.catalog.next_release == NOW + timedelta(minutes=5)
    assert isinstance(store.clock, Clock)
    store.clock.now = NOW + timedelta(minutes=6)
    report = store.reload()
    assert report.parsed == 0 and report.rebuilt
    assert "https://news.example.com/9" in urls(store)


def test_an_article_released_by_a_clock_ahead_is_withheld_again_when_it_goes_back(
    store: CatalogStore, seeds: Path
) -> None:
    """Embargo is decided from the current time at every reload, not once: a clock stepped an
    hour ahead releases the article; stepped back, the next reload withholds it again, though
    no file changed (and it is released for good once its time comes)."""
    write(seeds, "future.txt", article(9, publishedDateTime=(NOW + timedelta(minutes=30))))
    store.reload()
    assert isinstance(store.clock, Clock)
    future = "https://news.example.com/9"
    assert future not in urls(store)
    store.clock.now = NOW + timedelta(hours=1)
    store.reload()
    assert future in urls(store)
    assert future in {a.url for a in store.catalog.topics["reload"].articles}
    store.clock.now = NOW
    report = store.reload()
    assert report.parsed == 0 and report.rebuilt
    assert future not in urls(store)
    assert "reload" in store.catalog.topics and "news.example.com" in store.catalog.providers
    assert future not in {a.url for a in store.catalog.topics["reload"].articles}
    assert future not in {a.url for a in store.catalog.providers["news.example.com"].articles}
    assert store.catalog.next_release == NOW + timedelta(minutes=30)
    assert len(urls(store)) == 3
    store.clock.now = NOW + timedelta(minutes=31)
    store.reload()
    assert future in urls(store)


def test_a_withheld_again_feed_is_not_kept_by_a_cache_revalidating_by_date(
    tmp_path: Path,
) -> None:
    """Last-Modified moves past the one sent with the released article, so a cache that
    revalidates with If-Modified-Since alone gets the feed without it, not a 304."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    now = datetime.now(UTC)
    write(seeds, "1.txt", article(1, publishedDateTime=(now - timedelta(days=1)).isoformat()))
    write(seeds, "future.txt", article(9, publishedDateTime=(now + timedelta(minutes=30))))
    app = create_app({"seeds_dir": str(seeds), "base_url": "http://feeds.test"})
    store: CatalogStore = app.extensions["feedserver.store"]
    client = app.test_client()
    assert b"news.example.com/9" not in client.get("/feed.atom").data
    store.clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    store.reload()
    released = client.get("/feed.atom")
    assert b"news.example.com/9" in released.data
    store.clock = lambda: datetime.now(UTC)
    store.reload()
    revalidation = {"If-Modified-Since": released.headers["Last-Modified"]}
    again = client.get("/feed.atom", headers=revalidation)
    assert again.status_code == 200
    assert b"news.example.com/9" not in again.data
    for path in ("/topics/reload.atom", "/providers/news.example.com.rss", "/"):
        assert b"news.example.com/9" not in client.get(path).data


def test_a_feed_is_rendered_once_per_catalog(seeds: Path) -> None:
    app = create_app({"seeds_dir": str(seeds), "base_url": "http://feeds.test"})
    client = app.test_client()
    cache = app.extensions["feedserver.cache"]
    for _ in range(3):
        assert client.get("/topics/reload.atom").status_code == 200
    assert cache.renders == 1
    write(seeds, "4.txt", article(4))
    app.extensions["feedserver.store"].reload()
    body = client.get("/topics/reload.atom").data
    assert cache.renders == 2
    assert b"https://news.example.com/4" in body


def swap_ten_files(seeds: Path, store: CatalogStore, stop: threading.Event) -> None:
    """Move ten files out and back, reloading after each step, until stop is set."""
    hidden = seeds.with_name("hidden")
    hidden.mkdir()
    generation = 0
    while not stop.is_set():
        generation += 1
        for n in range(4, 14):
            src, dst = (seeds, hidden) if generation % 2 else (hidden, seeds)
            (src / f"{n}.txt").rename(dst / f"{n}.txt")
        store.reload()


def read_feed(app: Flask, failures: list[str], seen: set[int]) -> None:
    """Read /feed.rss 60 times; note each failure and each number of entries seen."""
    client = app.test_client()
    for _ in range(60):
        response = client.get("/feed.rss")
        if response.status_code != 200:
            failures.append(f"status {response.status_code}")
            continue
        parsed = feedparser.parse(response.data)
        if parsed.bozo:
            failures.append(f"malformed feed: {parsed.bozo_exception}")
        seen.add(len(parsed.entries))


def test_requests_never_see_a_partial_catalog_during_reloads(seeds: Path) -> None:
    """Two seed sets swap back and forth while clients read: every feed is one or the other."""
    for n in range(4, 40):
        write(seeds, f"{n}.txt", article(n))
    app = create_app({"seeds_dir": str(seeds), "base_url": "http://feeds.test", "feed_limit": 100})
    store = app.extensions["feedserver.store"]
    stop = threading.Event()
    failures: list[str] = []
    seen: set[int] = set()
    editor = threading.Thread(target=swap_ten_files, args=(seeds, store, stop))
    readers = [threading.Thread(target=read_feed, args=(app, failures, seen)) for _ in range(4)]
    editor.start()
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    stop.set()
    editor.join()
    assert failures == []
    assert seen <= {29, 39}, f"a partial catalog was served: {sorted(seen)}"

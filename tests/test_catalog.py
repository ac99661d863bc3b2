"""The published rule and the catalog as the store builds it (feedserver.store.CatalogStore),
and reloading it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver.catalog import ALL, EPOCH, PROVIDER, TOPIC, Catalog
from feedserver.load.records import ParsedSeed
from feedserver.load.seed_file import parse_seed_file
from feedserver.load.tree import TreeIndex
from feedserver.store import CatalogStore
from feedserver.winners import choose_winner

MAX_BYTES = 1024 * 1024
NOW = datetime(2025, 1, 1, tzinfo=UTC)
HOTHARDWARE = "https://hothardware.com/news/openai-supercomputer-by-microsoft"
TECHCRUNCH = (
    "https://techcrunch.com/2020/05/19/"
    "microsoft-says-it-teamed-up-with-openai-to-build-a-massive-ai-supercomputer-in-azure/"
)
UNPUBLISHED = {
    "https://www.computing.co.uk/news/4015437/microsoft-builds-huge-cloud-ai-supercomputer-openai",
    "https://www.geekwire.com/2020/microsoft-builds-openais-dream-system-azure-supercomputer-rank-among-top-5-world/",
    "https://www.datacenterknowledge.com/microsoft/microsoft-says-it-s-built-top-five-supercomputer-cloud-ai",
}


def parse_all(directory: Path) -> list[ParsedSeed]:
    changes = TreeIndex().scan(str(directory))
    return [parse_seed_file(directory, s, MAX_BYTES) for s in changes.changed]


def catalog_of(directory: Path, now: datetime = NOW) -> Catalog:
    """The catalog a store serves after loading the directory at `now`."""
    store = CatalogStore(directory, MAX_BYTES, "Site", clock=lambda: now)
    store.reload()
    return store.catalog


def urls(catalog: Catalog, kind: str = ALL, key: str = "") -> list[str]:
    collection = catalog.collection(kind, key)
    assert collection is not None, f"no {kind} {key!r}"
    return [article.url for article in collection.articles]


# --- the bundled seeds ------------------------------------------------------------------


@pytest.fixture
def bundled_catalog(bundled_seeds: Path) -> Catalog:
    return catalog_of(bundled_seeds)


def test_only_the_two_published_articles_are_served(bundled_catalog: Catalog) -> None:
    assert urls(bundled_catalog) == [HOTHARDWARE, TECHCRUNCH]
    assert bundled_catalog.files == 5
    assert bundled_catalog.problems == ()
    assert bundled_catalog.next_release is None


def test_bundled_topics_and_providers(bundled_catalog: Catalog) -> None:
    assert list(bundled_catalog.topics) == ["ai", "microsoft-ai"]
    assert list(bundled_catalog.providers) == ["hothardware.com", "techcrunch.com"]
    assert urls(bundled_catalog, TOPIC, "ai") == [HOTHARDWARE, TECHCRUNCH]
    assert urls(bundled_catalog, TOPIC, "microsoft-ai") == [HOTHARDWARE, TECHCRUNCH]
    assert urls(bundled_catalog, PROVIDER, "techcrunch.com") == [TECHCRUNCH]
    assert urls(bundled_catalog, PROVIDER, "hothardware.com") == [HOTHARDWARE]
    assert bundled_catalog.topics["microsoft-ai"].name == "Microsoft AI"
    assert bundled_catalog.providers["techcrunch.com"].name == "TechCrunch"


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (TOPIC, "azure"),
        (TOPIC, "ai-hardware"),
        (PROVIDER, "geekwire.com"),
        (PROVIDER, "computing.co.uk"),
        (PROVIDER, "datacenterknowledge.com"),
        (TOPIC, "nope"),
        ("other", "ai"),
    ],
)
def test_collections_of_unpublished_articles_do_not_exist(
    bundled_catalog: Catalog, kind: str, key: str
) -> None:
    assert bundled_catalog.collection(kind, key) is None


def test_unpublished_articles_are_in_no_collection(bundled_catalog: Catalog) -> None:
    collections = [
        bundled_catalog.everything,
        *bundled_catalog.topics.values(),
        *bundled_catalog.providers.values(),
    ]
    for collection in collections:
        assert not {a.url for a in collection.articles} & UNPUBLISHED, collection.key
        assert all(article.published for article in collection.articles)


def test_collection_updated_is_newest_entry(bundled_catalog: Catalog) -> None:
    assert bundled_catalog.everything.updated == datetime(2020, 5, 20, 14, 25, tzinfo=UTC)
    techcrunch = bundled_catalog.providers["techcrunch.com"]
    assert techcrunch.updated == datetime(2020, 5, 19, 15, 13, tzinfo=UTC)


def test_empty_catalog(tmp_seeds: Path) -> None:
    catalog = catalog_of(tmp_seeds)
    assert catalog.everything.articles == ()
    assert catalog.everything.updated == EPOCH
    assert catalog.topics == {} and catalog.providers == {}


# --- the published rule -----------------------------------------------------------------


@pytest.mark.parametrize("published", [False, "true", None, "yes please"])
def test_not_published_is_nowhere(
    tmp_seeds: Path, write_seed: Callable[..., Path], published: object
) -> None:
    write_seed("shown.txt", topics=["Shared"], provider={"name": "P", "domain": "p.example"})
    write_seed(
        "hidden.txt",
        published=published,
        topics=["Shared", "Secret Topic"],
        provider={"name": "Q", "domain": "q.example"},
    )
    catalog = catalog_of(tmp_seeds)
    assert urls(catalog) == ["https://example.com/articles/shown"]
    assert list(catalog.topics) == ["shared"]
    assert list(catalog.providers) == ["p.example"]
    assert urls(catalog, TOPIC, "shared") == ["https://example.com/articles/shown"]


def test_future_article_is_withheld_until_its_time(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("past.txt", publishedDateTime="2024-12-31T23:59:59Z")
    write_seed("future.txt", publishedDateTime="2025-06-01T08:00:00Z", topics=["Later"])
    write_seed("later.txt", publishedDateTime="2026-01-01T00:00:00Z")
    write_seed("unpublished.txt", publishedDateTime="2025-02-01T00:00:00Z", published=False)
    catalog = catalog_of(tmp_seeds, NOW)
    assert urls(catalog) == ["https://example.com/articles/past"]
    assert "later" not in catalog.topics
    assert catalog.next_release == datetime(2025, 6, 1, 8, tzinfo=UTC)

    released = catalog_of(tmp_seeds, datetime(2025, 6, 1, 8, tzinfo=UTC))
    assert urls(released) == [
        "https://example.com/articles/future",
        "https://example.com/articles/past",
    ]
    assert "later" in released.topics
    assert released.next_release == datetime(2026, 1, 1, tzinfo=UTC)


# --- duplicates -------------------------------------------------------------------------


@pytest.mark.parametrize(("newer", "older"), [("a.txt", "b.txt"), ("b.txt", "a.txt")])
def test_duplicate_web_url_most_recently_modified_file_wins(
    tmp_seeds: Path, write_seed: Callable[..., Path], newer: str, older: str
) -> None:
    url = "https://example.com/same"
    write_seed(older, webUrl=url, title="Older version", mtime=1_600_000_000)
    write_seed(newer, webUrl=url, title="Newer version", mtime=1_600_000_100)
    catalog = catalog_of(tmp_seeds)
    (article,) = catalog.everything.articles
    assert article.title == "Newer version"
    (problem,) = catalog.problems
    assert problem.file == older
    assert not problem.fatal
    assert "duplicate" in problem.reason and newer in problem.reason
    assert url not in problem.reason  # the newer file may be unpublished: its URL must not show


def test_duplicate_with_equal_mtimes_is_decided_by_path(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    url = "https://example.com/same"
    write_seed("b.txt", webUrl=url, title="B", mtime=1_600_000_000)
    write_seed("a.txt", webUrl=url, title="A", mtime=1_600_000_000)
    seeds = parse_all(tmp_seeds)
    forwards, _ = choose_winner(seeds)
    backwards, _ = choose_winner(reversed(seeds))
    assert forwards is backwards
    assert [a.title for a in catalog_of(tmp_seeds).everything.articles] == ["A"]


def test_newer_unpublished_duplicate_hides_the_article(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    url = "https://example.com/retracted"
    write_seed("a.txt", webUrl=url, mtime=1_600_000_000)
    write_seed("b.txt", webUrl=url, published=False, mtime=1_600_000_100)
    assert catalog_of(tmp_seeds).everything.articles == ()


# --- topics and providers ---------------------------------------------------------------


def test_topic_spellings_that_slugify_the_same_are_one_topic(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", topics=["Microsoft AI"])
    write_seed("b.txt", topics=["microsoft ai"])
    write_seed("c.txt", topics=["Microsoft  AI", "MICROSOFT-AI"])
    write_seed("d.txt", topics=["Microsoft AI", "Other"])
    catalog = catalog_of(tmp_seeds)
    assert list(catalog.topics) == ["microsoft-ai", "other"]
    topic = catalog.topics["microsoft-ai"]
    assert len(topic.articles) == 4
    assert topic.name == "Microsoft AI"  # the most used spelling


def test_display_name_is_the_most_used_spelling_then_the_smallest(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", topics=["mícrosoft ai"], publishedDateTime="2020-05-03T00:00:00Z")
    write_seed("b.txt", topics=["Microsoft  AI"], publishedDateTime="2020-05-01T00:00:00Z")
    catalog = catalog_of(tmp_seeds)
    # A tie: the smallest in code point order, whichever is newer or was read first.
    assert catalog.topics["microsoft-ai"].name == "Microsoft AI"
    write_seed("c.txt", topics=["mícrosoft ai"])
    assert catalog_of(tmp_seeds).topics["microsoft-ai"].name == "mícrosoft ai"


def test_display_names_do_not_depend_on_the_order_of_reloads(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    spellings = ["Microsoft AI", "microsoft  ai", "Mícrosoft AI", "mícrosoft ai", "Mícrosoft AI"]
    store = CatalogStore(tmp_seeds, MAX_BYTES, "Site", clock=lambda: NOW)
    for n, spelling in enumerate(spellings):  # one article per reload
        write_seed(f"{n}.txt", topics=[spelling], provider={"name": f"P  {n % 2}"})
        store.reload()
    once = catalog_of(tmp_seeds)
    assert store.catalog.topics["microsoft-ai"].name == once.topics["microsoft-ai"].name
    assert once.topics["microsoft-ai"].name == "Mícrosoft AI"
    assert store.catalog.providers["p-0"].name == once.providers["p-0"].name == "P 0"
    # Whatever an article says, the catalog's name is the one shown for it.
    article = store.catalog.everything.articles[0]
    assert {store.catalog.names.topic(t) for t in article.topics} == {"Mícrosoft AI"}
    (tmp_seeds / "2.txt").unlink()
    (tmp_seeds / "4.txt").unlink()
    store.reload()
    assert store.catalog.topics["microsoft-ai"].name == "Microsoft AI"  # a tie of three now


def test_provider_domains_are_lowercased_without_www(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", provider={"name": "TechCrunch", "domain": "WWW.TechCrunch.com"})
    write_seed("b.txt", provider={"name": "TechCrunch", "domain": "techcrunch.com"})
    write_seed("c.txt", provider={"name": "Some Blog"})
    write_seed("d.txt", provider={"name": "Some Blog", "domain": ""})
    catalog = catalog_of(tmp_seeds)
    assert list(catalog.providers) == ["some-blog", "techcrunch.com"]
    assert len(catalog.providers["techcrunch.com"].articles) == 2
    assert len(catalog.providers["some-blog"].articles) == 2
    assert catalog.providers["techcrunch.com"].name == "TechCrunch"


def test_article_without_provider_or_topics_is_only_in_the_all_feed(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", omit=("provider", "topics"))
    catalog = catalog_of(tmp_seeds)
    assert len(catalog.everything.articles) == 1
    assert catalog.topics == {} and catalog.providers == {}


def test_newest_first_with_ties_by_url(tmp_seeds: Path, write_seed: Callable[..., Path]) -> None:
    tie = "2020-05-01T12:00:00Z"
    write_seed("c.txt", webUrl="https://example.com/c", publishedDateTime=tie)
    write_seed("a.txt", webUrl="https://example.com/a", publishedDateTime=tie)
    write_seed("new.txt", webUrl="https://example.com/z", publishedDateTime="2020-05-02")
    write_seed(
        "b.txt", webUrl="https://example.com/b", publishedDateTime="2020-05-01T14:00:00+02:00"
    )
    write_seed("old.txt", webUrl="https://example.com/0", publishedDateTime="2019-01-01")
    catalog = catalog_of(tmp_seeds)
    expected = [f"https://example.com/{name}" for name in ("z", "a", "b", "c", "0")]
    assert urls(catalog) == expected
    assert urls(catalog, TOPIC, "testing") == expected
    assert urls(catalog, PROVIDER, "example.com") == expected


def test_problems_list_every_file_sorted(
    tmp_seeds: Path, write_seed: Callable[..., Path], write_file: Callable[..., Path]
) -> None:
    write_file("z/broken.txt", "title: [unclosed\n")
    write_seed("m.txt", topics="not a list")
    write_seed("a.txt", omit=("title",))
    catalog = catalog_of(tmp_seeds)
    assert [(p.file, p.fatal) for p in catalog.problems] == [
        ("a.txt", True),
        ("m.txt", False),
        ("z/broken.txt", True),
    ]
    assert "title" in catalog.problems[0].reason
    assert "topics" in catalog.problems[1].reason
    assert "invalid YAML" in catalog.problems[2].reason
    assert len(catalog.everything.articles) == 1


# --- reloading (CatalogStore) -----------------------------------------------------------


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_store_loads_the_bundled_seeds(seeds_dir: Path) -> None:
    store = CatalogStore(seeds_dir, MAX_BYTES, "Site")
    report = store.reload()
    assert (report.files, report.parsed, report.failed, report.error) == (5, 5, 0, None)
    assert urls(store.catalog) == [HOTHARDWARE, TECHCRUNCH]
    assert store.degraded_reason is None


def test_unchanged_directory_is_not_parsed_again(seeds_dir: Path) -> None:
    store = CatalogStore(seeds_dir, MAX_BYTES, "Site")
    store.reload()
    catalog = store.catalog
    report = store.reload()
    assert (report.parsed, report.unchanged, report.rebuilt) == (0, 5, False)
    assert store.catalog is catalog


def test_reload_sees_new_changed_and_removed_files(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", mtime=1_600_000_000)
    store = CatalogStore(tmp_seeds, MAX_BYTES, "Site")
    store.reload()
    write_seed("b.txt")
    write_seed("a.txt", title="Edited title", mtime=1_600_000_100)
    report = store.reload()
    assert report.parsed == 2
    assert sorted(a.title for a in store.catalog.everything.articles) == [
        "Edited title",
        "Test article b",
    ]
    (tmp_seeds / "b.txt").unlink()
    report = store.reload()
    assert report.removed == 1
    assert [a.title for a in store.catalog.everything.articles] == ["Edited title"]


def test_file_that_breaks_keeps_its_last_good_version(
    tmp_seeds: Path, write_seed: Callable[..., Path], write_file: Callable[..., Path]
) -> None:
    write_seed("a.txt", title="Good")
    store = CatalogStore(tmp_seeds, MAX_BYTES, "Site")
    store.reload()
    # Still saying `published: true`; broken takedowns are in tests/test_hostile_seeds.py.
    write_file("a.txt", "---\npublished: true\ntitle: [broken\n---\n", mtime=2_000_000_000)
    report = store.reload()
    assert report.stale == ("a.txt",)
    assert [a.title for a in store.catalog.everything.articles] == ["Good"]
    (problem,) = store.catalog.problems
    assert problem.file == "a.txt"
    assert "invalid YAML" in problem.reason and "last good version" in problem.reason


def test_unpublishing_a_file_removes_it(tmp_seeds: Path, write_seed: Callable[..., Path]) -> None:
    write_seed("a.txt", topics=["Gone"], mtime=1_600_000_000)
    store = CatalogStore(tmp_seeds, MAX_BYTES, "Site")
    store.reload()
    assert "gone" in store.catalog.topics
    write_seed("a.txt", topics=["Gone"], published=False, mtime=1_600_000_100)
    store.reload()
    assert store.catalog.everything.articles == ()
    assert store.catalog.topics == {}


def test_scheduled_article_is_released_by_a_reload(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", publishedDateTime="2025-01-01T10:00:00Z")
    clock = Clock(datetime(2025, 1, 1, 9, tzinfo=UTC))
    store = CatalogStore(tmp_seeds, MAX_BYTES, "Site", clock=clock)
    store.reload()
    before = store.catalog
    assert before.everything.articles == ()
    assert before.next_release == datetime(2025, 1, 1, 10, tzinfo=UTC)
    clock.now += timedelta(hours=1)
    report = store.reload()
    assert report.parsed == 0 and report.rebuilt
    after = store.catalog
    assert len(after.everything.articles) == 1
    assert after.next_release is None


def test_vanished_directory_keeps_the_last_catalog(seeds_dir: Path) -> None:
    store = CatalogStore(seeds_dir, MAX_BYTES, "Site")
    store.reload()
    catalog = store.catalog
    shutil.rmtree(seeds_dir)
    report = store.reload()
    assert report.error is not None
    assert store.degraded_reason == report.error
    assert store.catalog is catalog
    assert len(store.catalog.everything.articles) == 2
    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", seeds_dir)
    assert store.reload().error is None
    assert store.degraded_reason is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported(tmp_seeds: Path, write_seed: Callable[..., Path]) -> None:
    path = write_seed("a.txt")
    path.chmod(0)
    try:
        (problem,) = catalog_of(tmp_seeds).problems
    finally:
        path.chmod(0o644)
    assert problem.fatal and "permission" in problem.reason

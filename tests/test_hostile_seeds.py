"""The hostile corpus (tests/data/hostile, plus files too big or too odd to keep in git):
each bad file is named with a reason, and every good file beside it is served unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask import Flask

from feedserver import cli

from .conftest import TEST_BASE_URL, GunicornServer

CORPUS = Path(__file__).parent / "data" / "hostile"

# file -> words its line in `feedserver check` must hold; "skipped" means not served.
EXPECTED_PROBLEMS = {
    "no_closing_fence.txt": ("skipped", "no closing '---'"),
    "invalid_yaml.txt": ("skipped", "invalid YAML at line 3"),
    "yaml_list.txt": ("skipped", "is a list, not a mapping"),
    "yaml_scalar.txt": ("skipped", "single value, not a mapping"),
    "empty.txt": ("skipped", "empty"),
    "latin1.txt": ("skipped", "not valid UTF-8"),
    "python_tag.txt": ("skipped", "python/object/apply"),
    "billion_laughs.txt": ("skipped", "'title' must be text"),
    "date_not_a_date.txt": ("skipped", "'publishedDateTime' is not a date"),
    "weburl_javascript.txt": ("skipped", "'webUrl' must be an absolute http"),
    "weburl_data.txt": ("skipped", "'webUrl' must be an absolute http"),
    "weburl_relative.txt": ("skipped", "'webUrl' must be an absolute http"),
    "weburl_protocol_relative.txt": ("skipped", "'webUrl' must be an absolute http"),
    "too_big.txt": ("skipped", "over the limit"),
    "deep_nesting.txt": ("skipped", "nested too deeply"),
    "topics_string.txt": ("warning", "'topics' must be a list"),
    "topics_mappings.txt": ("warning", "topic 1 is not a usable name"),
    "provider_string.txt": ("warning", "'provider' must be a mapping"),
    "images_mapping.txt": ("warning", "'images' must be a list"),
    "related_missing_fields.txt": ("warning", "related 1 needs a title"),
    "quality_text.txt": ("warning", "'quality' is not a number"),
    "published_string.txt": ("warning", "'published' must be true or false"),
    "markup_and_urls.txt": ("warning", "image 1 has no absolute http(s) url"),
    "duplicate_b.txt": ("warning", "duplicate webUrl"),
    # Values the YAML scanner accepts and its constructors refuse, at their line in the file.
    "date_february_30.txt": ("skipped", "line 6: '2024-02-30' is not a valid timestamp"),
    "date_year_zero.txt": ("skipped", "line 6: '0000-01-01' is not a valid timestamp"),
    "date_offset_25_hours.txt": ("skipped", "line 6: '2024-01-01T10:00:00+25:00' is not a valid"),
    "published_date_time_february_30.txt": ("skipped", "line 4: '2024-02-30T10:00:00Z' is not"),
    "timestamp_tag_words.txt": ("skipped", "line 6: 'next tuesday' is not a valid timestamp"),
    "excerpt_like_a_bad_date.txt": ("skipped", "line 6: '2024-13-45' is not a valid timestamp"),
    "int_tag_0x.txt": ("skipped", "line 6: '0x' is not a valid int"),
    "float_tag_abc.txt": ("skipped", "line 6: 'abc' is not a valid float"),
    "bool_tag_maybe.txt": ("skipped", "line 6: 'maybe' is not a valid bool"),
    "unknown_tag.txt": (
        "skipped",
        "line 6: could not determine a constructor for the tag '!secret'",
    ),
    "duplicate_keys.txt": ("skipped", "line 7: duplicate key 'excerpt' (first at line 6)"),
    "duplicate_published.txt": ("skipped", "line 7: duplicate key 'published' (first at line 5)"),
    "tab_indented.txt": ("skipped", "line 6: found character that cannot start any token (a tab"),
    "provider_domain_rss.txt": ("warning", "provider key 'news.rss' ends like a feed"),
}
SERVED = {
    f"https://example.com/{slug}"
    for slug in (
        "plain-good",
        "bom",
        "crlf",
        "in-directory",
        "topics-string",
        "topics-mappings",
        "provider-string",
        "images-mapping",
        "related-missing",
        "quality-text",
        "control-characters",
        "markup-title",
        "duplicate",
        "bidi",
        "rss-domain",
    )
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The kept corpus plus the files made here: too big, too deep, a symlink leading out."""
    root = tmp_path / "hostile"
    shutil.copytree(CORPUS, root)
    # The duplicates differ only by mtime: the newer file wins.
    (root / "duplicate_a.txt").touch()
    filler = "x" * (1024 * 1024)
    (root / "too_big.txt").write_text(
        f"---\ntitle: Too big\nwebUrl: https://example.com/big\n"
        f"publishedDateTime: 2021-06-01\npublished: true\nexcerpt: {filler}\n---\n"
    )
    depth = 120_000  # libyaml alone crashes the process at about 100,000
    (root / "deep_nesting.txt").write_text(
        f"---\ntitle: {'[' * depth}{']' * depth}\nwebUrl: https://example.com/deep\n"
        "publishedDateTime: 2021-06-01\npublished: true\n---\n"
    )
    outside = tmp_path / "outside.txt"
    outside.write_text(
        "---\ntitle: Outside secret\nwebUrl: https://example.com/outside\n"
        "publishedDateTime: 2021-06-01\npublished: true\n---\n"
    )
    (root / "link_outside.txt").symlink_to(outside)
    return root


def test_check_names_every_bad_file_with_a_reason(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", str(corpus)]) == 1
    lines = capsys.readouterr().out.splitlines()
    for name, (severity, reason) in EXPECTED_PROBLEMS.items():
        matching = [line for line in lines if line.startswith(f"{name}: {severity}: ")]
        assert any(reason in line for line in matching), f"{name}: {matching}"
    assert not any(line.startswith("link_outside.txt") for line in lines)
    assert str(corpus) not in "\n".join(lines[:-1])  # paths relative to the directory
    assert lines[-1].endswith("files unusable)")


def test_every_good_file_is_served_beside_the_bad_ones(
    corpus: Path, make_app: Callable[..., Flask]
) -> None:
    client = make_app(corpus, base_url=TEST_BASE_URL, feed_limit=100).test_client()
    for extension in ("rss", "atom"):
        parsed = feedparser.parse(client.get(f"/feed.{extension}").data)
        assert not parsed.bozo
        assert {entry.link for entry in parsed.entries} == SERVED
    items = client.get("/feed.json").get_json()["items"]
    assert {item["url"] for item in items} == SERVED
    served_title = {item["url"]: item["title"] for item in items}
    assert served_title["https://example.com/duplicate"] == "Duplicate URL, first file"
    health = client.get("/healthz").get_json()
    named = {error["file"] for error in health["errors"]}
    assert set(EXPECTED_PROBLEMS) <= named


def test_markup_is_text_everywhere(corpus: Path, make_app: Callable[..., Flask]) -> None:
    client = make_app(corpus, base_url=TEST_BASE_URL).test_client()
    title = "<script>alert('title')</script><b>bold</b> & more"
    for extension in ("rss", "atom"):
        parsed = feedparser.parse(client.get(f"/topics/hostile.{extension}").data)
        entry = next(e for e in parsed.entries if e.link.endswith("markup-title"))
        assert entry.title == title
    item = next(
        i for i in client.get("/feed.json").get_json()["items"] if i["url"].endswith("markup-title")
    )
    assert item["title"] == title
    assert "<img src=x" not in item["content_html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in item["content_html"]
    assert "javascript:" not in item["content_html"]
    page = client.get("/topics/hostile").get_data(as_text=True)
    assert "<script>" not in page and "&lt;script&gt;" in page
    rss = client.get("/topics/hostile.rss").get_data(as_text=True)
    assert "<script>" not in rss.replace("<![CDATA[", "")


def test_characters_xml_cannot_carry_are_stripped(
    corpus: Path, make_app: Callable[..., Flask]
) -> None:
    client = make_app(corpus, base_url=TEST_BASE_URL).test_client()
    item = next(
        i
        for i in client.get("/feed.json").get_json()["items"]
        if i["url"].endswith("control-characters")
    )
    assert item["title"] == "Bell and  NUL and  and escape characters"
    assert item["summary"] == "tab\there end"
    assert not feedparser.parse(client.get("/feed.atom").data).bozo


def test_a_file_that_vanishes_or_cannot_be_read_is_reported(
    corpus: Path, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def flaky_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(file)
        if name.endswith("plain_good.txt"):
            raise FileNotFoundError(2, "gone")
        if name.endswith("crlf.txt"):
            raise PermissionError(13, "denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", flaky_open)
    client = make_app(corpus, base_url=TEST_BASE_URL, feed_limit=100).test_client()
    errors = {e["file"]: e["error"] for e in client.get("/healthz").get_json()["errors"]}
    assert "vanished" in errors["plain_good.txt"]
    assert "permission denied" in errors["crlf.txt"]
    urls = {i["url"] for i in client.get("/feed.json").get_json()["items"]}
    assert urls == SERVED - {"https://example.com/plain-good", "https://example.com/crlf"}
    assert json.dumps(errors).count(str(corpus)) == 0


# --- bidirectional controls ---------------------------------------------------------------

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_bidi_controls_are_stripped_from_every_text(
    corpus: Path, make_app: Callable[..., Flask]
) -> None:
    client = make_app(corpus, base_url=TEST_BASE_URL).test_client()
    item = next(
        i for i in client.get("/feed.json").get_json()["items"] if i["url"].endswith("/bidi")
    )
    assert item["title"] == "Bidi evil title x"
    assert item["summary"] == "An excerpt"
    for path in ("/feed.json", "/feed.atom", "/feed.rss", "/topics/hostile", "/", "/topics.json"):
        body = client.get(path).get_data(as_text=True)
        assert not set(body) & set(BIDI_CONTROLS), path
    names = {p["name"] for p in client.get("/providers.json").get_json()}
    assert "Example" in names and not any(set(n) & set(BIDI_CONTROLS) for n in names)


# --- names: every page and feed the site links to answers ----------------------------------


def _site_links(client: Any) -> set[str]:
    """Every page and feed path /topics.json and /providers.json link to."""
    links = set()
    for listing in ("/topics.json", "/providers.json"):
        for entry in client.get(listing).get_json():
            links.add(entry["url"])
            links.update(entry["feeds"].values())
    return {link.removeprefix(TEST_BASE_URL) for link in links}


def test_every_linked_page_and_feed_answers_200(
    corpus: Path, make_app: Callable[..., Flask]
) -> None:
    client = make_app(corpus, base_url=TEST_BASE_URL).test_client()
    links = _site_links(client)
    assert "/providers/news.rss-91aeb3423334.rss" in links  # the feed-like domain, made safe
    for link in sorted(links):
        assert client.get(link).status_code == 200, link
    page = client.get("/providers/news.rss-91aeb3423334").get_data(as_text=True)
    assert "Provider domain ends in .rss" in page


def _names_seeds(directory: Path, write_seed: Callable[..., Path]) -> None:
    topics = ["C", "C++", "C#", "Microsoft AI", "microsoft  ai", "Mícrosoft AI", "R&D", "R D"]
    for n, topic in enumerate(topics):
        write_seed(f"topic{n}.txt", topics=[topic], directory=directory)
    write_seed("long.txt", topics=["Long " * 80], directory=directory)  # 400 characters
    for n, domain in enumerate(["feeds.example.atom", "example.json", "example.org\n"]):
        write_seed(
            f"provider{n}.txt", provider={"name": f"P{n}", "domain": domain}, directory=directory
        )
    long_domain = ".".join(["a" * 63] * 3) + ".example"  # a valid host of 200 characters
    write_seed(
        "long-domain.txt", provider={"name": "Long", "domain": long_domain}, directory=directory
    )


def test_topic_names_share_a_slug_only_when_they_differ_by_case_spacing_or_accents(
    tmp_seeds: Path, write_seed: Callable[..., Path], make_app: Callable[..., Flask]
) -> None:
    _names_seeds(tmp_seeds, write_seed)
    client = make_app(tmp_seeds, base_url=TEST_BASE_URL).test_client()
    counts = {t["slug"]: t["count"] for t in client.get("/topics.json").get_json()}
    assert counts["c"] == counts["c-plus-plus"] == counts["c-sharp"] == 1
    assert counts["microsoft-ai"] == 3
    assert counts["r-and-d"] == counts["r-d"] == 1
    titles = {
        slug: [e.title for e in feedparser.parse(client.get(f"/topics/{slug}.atom").data).entries]
        for slug in ("c", "c-plus-plus", "c-sharp")
    }
    assert titles == {
        "c": ["Test article topic0"],
        "c-plus-plus": ["Test article topic1"],
        "c-sharp": ["Test article topic2"],
    }
    links = _site_links(client)
    for link in sorted(links):
        assert client.get(link).status_code == 200, link
    assert all(len(link.rsplit("/", 1)[1].encode()) < 128 for link in links)
    providers = {p["slug"] for p in client.get("/providers.json").get_json()}
    assert "example.org" in providers  # the trailing newline is cleaned off
    assert not [key for key in providers if key.endswith((".rss", ".atom", ".json"))]


def test_check_reports_each_merge_of_different_names(
    tmp_seeds: Path, write_seed: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _names_seeds(tmp_seeds, write_seed)
    write_seed("same-domain.txt", provider={"name": "Other name", "domain": "www.Example.org"})
    assert cli.main(["check", str(tmp_seeds)]) == 0
    lines = capsys.readouterr().out.splitlines()
    merges = [line for line in lines if line.startswith("topics/microsoft-ai: ")]
    assert merges == [
        "topics/microsoft-ai: warning: one topic for the names "
        "'Microsoft AI', 'Mícrosoft AI', 'microsoft ai'"  # whitespace collapsed when read
    ]
    assert "providers/example.org: warning: one provider for the names 'Other name', 'P2'" in lines
    assert not [line for line in lines if line.startswith(("topics/c", "topics/r-"))]
    # The keys made safe are warnings of their files.
    assert any(line.startswith("long.txt: warning: topic key 'long-long") for line in lines)
    assert any(line.startswith("provider0.txt: warning: provider key") for line in lines)
    assert any(line.startswith("long-domain.txt: warning: provider key") for line in lines)
    assert "2 problems" not in lines[-1] and "(0 files unusable)" in lines[-1]


def test_build_exports_long_and_feed_like_names(
    tmp_seeds: Path, tmp_path: Path, write_seed: Callable[..., Path]
) -> None:
    _names_seeds(tmp_seeds, write_seed)
    outdir = tmp_path / "site"
    command = [sys.executable, "-m", "feedserver", "build", str(outdir)]
    command += ["--base-url", TEST_BASE_URL, "--seeds", str(tmp_seeds)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "File name too long" not in result.stderr + result.stdout
    (long_topic,) = (outdir / "topics").glob("long-long*.atom")
    (long_provider,) = (outdir / "providers").glob("aaaa*.atom")
    assert long_topic.stat().st_size > 0 and long_provider.stat().st_size > 0
    exported = {path.name for path in (outdir / "providers").glob("*.*")}
    assert {"example.json-" in name for name in exported} == {True, False}
    for path in outdir.rglob("*"):
        assert len(path.name.encode()) < 128, path.name


# --- the published flag fails closed ------------------------------------------------------

TAKEDOWN = (
    "---\n"
    'title: "Story that is taken down"\n'
    "webUrl: https://example.com/taken-down\n"
    "publishedDateTime: 2021-06-01T10:00:00Z\n"
    "published: true\n"
    "excerpt: Takedown excerpt\n"
    "provider:\n"
    "  name: Example\n"
    "  domain: example.com\n"
    "topics:\n"
    "  - Takedown\n"
    "---\n"
)
TAKEDOWN_URL = "https://example.com/taken-down"


def _unpublish(text: str) -> str:
    return text.replace("published: true", "published: false")


# Edits that mean "take it down" but leave a file that no longer parses.
BROKEN_TAKEDOWNS: dict[str, Callable[[str], bytes]] = {
    "tab_indentation": lambda t: _unpublish(t).replace("  name:", "\tname:").encode(),
    "missing_closing_fence": lambda t: _unpublish(t).removesuffix("---\n").encode(),
    "truncated_to_0_bytes": lambda t: b"",
    "saved_in_latin1": lambda t: (
        _unpublish(t).replace("Takedown excerpt", "Retiré").encode("latin-1")
    ),
    "only_published_false_left": lambda t: b"---\npublished: false\n---\n",
    "duplicate_published_keys": lambda t: t.replace("title:", "published: false\ntitle:").encode(),
}
# Broken saves that still say `published: true`: the last good version stays.
BROKEN_STILL_PUBLISHED: dict[str, Callable[[str], bytes]] = {
    "half_written": lambda t: t[: t.index("excerpt:")].encode(),
    "tab_indentation": lambda t: t.replace("  name:", "\tname:").encode(),
    "saved_in_latin1": lambda t: t.replace("Takedown excerpt", "Retiré").encode("latin-1"),
}


def _later(path: Path, seconds: int) -> None:
    """Move a file's mtime on, so a rewrite is seen even on coarse-timestamp file systems."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 10**9))


def _served_urls(client: Any) -> set[str]:
    """Article URLs of every feed the takedown story appears in."""
    urls = {i["url"] for i in client.get("/feed.json").get_json()["items"]}
    for path in ("/feed.rss", "/feed.atom", "/topics/takedown.atom", "/providers/example.com.rss"):
        urls |= {e.link for e in feedparser.parse(client.get(path).data).entries}
    return urls


@pytest.mark.parametrize("edit", sorted(BROKEN_TAKEDOWNS))
def test_a_broken_takedown_withholds_the_article_at_once(
    edit: str, tmp_seeds: Path, write_seed: Callable[..., Path], make_app: Callable[..., Flask]
) -> None:
    write_seed("bystander.txt", topics=["Takedown"])  # keeps the topic and provider alive
    story = tmp_seeds / "story.txt"
    story.write_text(TAKEDOWN, "utf-8")
    app = make_app(tmp_seeds, base_url=TEST_BASE_URL)
    client = app.test_client()
    assert TAKEDOWN_URL in _served_urls(client)

    story.write_bytes(BROKEN_TAKEDOWNS[edit](TAKEDOWN))
    _later(story, 5)
    store = app.extensions["feedserver.store"]
    report = store.reload()
    assert report.withheld == ("story.txt",) and report.stale == ()
    assert TAKEDOWN_URL not in _served_urls(client)
    assert "https://example.com/articles/bystander" in _served_urls(client)
    health = client.get("/healthz").get_json()
    assert health["reload"]["withheld"] == ["story.txt"]
    (reason,) = [e["error"] for e in health["errors"] if e["file"] == "story.txt"]
    assert "withheld" in reason and "published: true" in reason

    # Unchanged, or broken again in another way: still withheld, even saying published.
    assert store.reload().withheld == ("story.txt",)
    story.write_bytes(BROKEN_STILL_PUBLISHED["half_written"](TAKEDOWN))
    _later(story, 10)
    assert store.reload().withheld == ("story.txt",)
    assert TAKEDOWN_URL not in _served_urls(client)

    # Fixed: served again, and no longer named.
    story.write_text(TAKEDOWN, "utf-8")
    _later(story, 15)
    report = store.reload()
    assert report.withheld == () and report.failed == 0
    assert TAKEDOWN_URL in _served_urls(client)


@pytest.mark.parametrize("edit", sorted(BROKEN_STILL_PUBLISHED))
def test_a_broken_save_that_still_says_published_keeps_the_last_good_version(
    edit: str, tmp_seeds: Path, make_app: Callable[..., Flask]
) -> None:
    story = tmp_seeds / "story.txt"
    story.write_text(TAKEDOWN, "utf-8")
    app = make_app(tmp_seeds, base_url=TEST_BASE_URL)
    story.write_bytes(BROKEN_STILL_PUBLISHED[edit](TAKEDOWN))
    _later(story, 5)
    report = app.extensions["feedserver.store"].reload()
    assert report.stale == ("story.txt",) and report.withheld == ()
    assert TAKEDOWN_URL in _served_urls(app.test_client())


def test_a_new_file_that_breaks_is_not_named_as_withheld(
    tmp_seeds: Path, make_app: Callable[..., Flask]
) -> None:
    app = make_app(tmp_seeds, base_url=TEST_BASE_URL)
    (tmp_seeds / "story.txt").write_bytes(BROKEN_TAKEDOWNS["tab_indentation"](TAKEDOWN))
    report = app.extensions["feedserver.store"].reload()
    assert report.withheld == () and report.failed == 1


# A takedown copy that breaks keeps the URL down: no other copy of the article comes back.
STORY_URL = "https://example.com/story"
ARCHIVE_COPY = TAKEDOWN.replace("Story that is taken down", "Story (archive copy)").replace(
    TAKEDOWN_URL, STORY_URL
)
NEWER_COPY = ARCHIVE_COPY.replace("Story (archive copy)", "Story")


def _two_copies(seeds: Path, newer_published: bool) -> Path:
    """archive/story.md (published) and the newer 2024/story.md with the same webUrl."""
    (seeds / "archive").mkdir()
    (seeds / "2024").mkdir()
    (seeds / "archive" / "story.md").write_text(ARCHIVE_COPY, "utf-8")
    newer = seeds / "2024" / "story.md"
    newer.write_text(NEWER_COPY if newer_published else _unpublish(NEWER_COPY), "utf-8")
    os.utime(seeds / "archive" / "story.md", (1_700_000_000, 1_700_000_000))
    os.utime(newer, (1_700_000_100, 1_700_000_100))
    return newer


def _story_titles(client: Any) -> set[str]:
    items = client.get("/feed.json").get_json()["items"]
    return {item["title"] for item in items if item["url"] == STORY_URL}


@pytest.mark.parametrize("newer_published", [False, True], ids=["unpublished", "published"])
def test_a_broken_takedown_copy_never_brings_back_another_copy(
    newer_published: bool,
    tmp_seeds: Path,
    tmp_path: Path,
    write_seed: Callable[..., Path],
    make_app: Callable[..., Flask],
) -> None:
    write_seed("bystander.txt")
    newer = _two_copies(tmp_seeds, newer_published)
    settings = {"base_url": TEST_BASE_URL, "cache_dir": str(tmp_path / "cache")}
    app = make_app(tmp_seeds, **settings)
    client = app.test_client()
    assert _story_titles(client) == ({"Story"} if newer_published else set())

    # The takedown saved with a tab: the newer copy fails, no longer saying published.
    newer.write_bytes(BROKEN_TAKEDOWNS["tab_indentation"](NEWER_COPY))
    _later(newer, 200)
    store = app.extensions["feedserver.store"]
    store.reload()
    assert _story_titles(client) == set()
    errors = {e["file"]: e["error"] for e in client.get("/healthz").get_json()["errors"]}
    assert "2024/story.md holds the same webUrl" in errors["archive/story.md"]
    assert "invalid YAML" in errors["2024/story.md"]

    # Restarts: from the snapshot of before the break (the broken file parsed against its
    # state there), then from the snapshot that start wrote (nothing parsed): still withheld.
    for parsed in (1, 0):
        again = make_app(tmp_seeds, **settings)
        assert again.extensions["feedserver.store"].last_report.parsed == parsed
        assert _story_titles(again.test_client()) == set()

    # Broken again, now saying published: still withheld (its good version is gone).
    newer.write_bytes(BROKEN_STILL_PUBLISHED["half_written"](NEWER_COPY))
    _later(newer, 300)
    store.reload()
    assert _story_titles(client) == set()
    # Fixed as a takedown: one unpublished copy wins, nothing served; deleted: the archive.
    newer.write_text(_unpublish(NEWER_COPY), "utf-8")
    _later(newer, 400)
    store.reload()
    assert _story_titles(client) == set()
    newer.unlink()
    store.reload()
    assert _story_titles(client) == {"Story (archive copy)"}
    assert "https://example.com/articles/bystander" in {
        i["url"] for i in client.get("/feed.json").get_json()["items"]
    }


# --- under a real gunicorn -------------------------------------------------------------------

INTERVAL = 1
# Two intervals is the promise; the deadline is generous so that a loaded machine cannot
# make the test fail: it asserts the outcome, not the timing.
SETTLE_DEADLINE = 60.0
REQUESTS = 12  # each on a new connection, so every worker answers some


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {SETTLE_DEADLINE} s: {what}")
        time.sleep(0.2)


def _gunicorn_urls(server: GunicornServer, paths: tuple[str, ...]) -> list[set[str]]:
    """The article URLs of each path, each fetched REQUESTS times on fresh connections."""
    seen = []
    for _ in range(REQUESTS):
        urls: set[str] = set()
        for path in paths:
            status, _, body = server.fetch(path)
            assert status in (200, 404), (path, status)
            if status == 200 and path.endswith(".json"):
                urls |= {item["url"] for item in json.loads(body)["items"]}
            elif status == 200:
                urls |= {entry.link for entry in feedparser.parse(body).entries}
        seen.append(urls)
    return seen


def _healthz(server: GunicornServer) -> dict[str, Any]:
    _, _, body = server.fetch("/healthz")
    data: dict[str, Any] = json.loads(body)
    return data


def test_broken_takedowns_disappear_under_gunicorn(
    tmp_seeds: Path, write_seed: Callable[..., Path], start_gunicorn: Callable[..., GunicornServer]
) -> None:
    write_seed("bystander.txt", topics=["Takedown"])
    urls = {}
    for edit in BROKEN_TAKEDOWNS:
        url = f"https://example.com/taken-down/{edit}"
        urls[edit] = url
        (tmp_seeds / f"{edit}.txt").write_text(TAKEDOWN.replace(TAKEDOWN_URL, url), "utf-8")
    server = start_gunicorn(tmp_seeds, env={"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL)})
    paths = ("/topics/takedown.rss", "/feed.rss", "/feed.atom", "/feed.json")
    assert all(set(urls.values()) <= seen for seen in _gunicorn_urls(server, paths))

    for edit, change in BROKEN_TAKEDOWNS.items():
        path = tmp_seeds / f"{edit}.txt"
        path.write_bytes(change(path.read_text("utf-8")))
        _later(path, 5)
    _wait_for(
        lambda: all(not set(urls.values()) & seen for seen in _gunicorn_urls(server, paths)),
        "every broken takedown withheld by every worker",
    )
    assert all("https://example.com/articles/bystander" in s for s in _gunicorn_urls(server, paths))
    # Fresh connections may all reach one worker: wait until each answer names them all.
    named = sorted(f"{edit}.txt" for edit in BROKEN_TAKEDOWNS)
    _wait_for(
        lambda: all(
            sorted(_healthz(server)["reload"]["withheld"]) == named for _ in range(REQUESTS)
        ),
        "/healthz naming every withheld file",
    )
    log = server.output()
    assert "tab_indentation.txt: invalid YAML at line 8: found" in log  # the file, its reason
    assert "its last good version is withheld" in log
    assert "Traceback" not in log


def test_gunicorn_starts_and_builds_beside_every_hostile_file(
    corpus: Path, tmp_path: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    server = start_gunicorn(corpus, env={"FEEDSERVER_FEED_LIMIT": "100"})
    for _ in range(REQUESTS):  # every worker booted and serves the good files
        status, _, body = server.fetch("/feed.json")
        assert status == 200
        assert {item["url"] for item in json.loads(body)["items"]} == SERVED
    log = server.output()
    assert "Traceback" not in log and "Worker failed to boot" not in log
    assert "date_february_30.txt: invalid YAML at line 6: '2024-02-30'" in log
    command = [sys.executable, "-m", "feedserver", "build", str(tmp_path / "site")]
    command += ["--base-url", TEST_BASE_URL, "--seeds", str(corpus)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "site" / "providers" / "news.rss-91aeb3423334.atom").is_file()


def _swap_fifos_in_and_out(names: list[Path], stop: threading.Event) -> int:
    """Replace each file by a FIFO and back, over and over, until stop; returns the swaps."""
    originals = {path: path.read_bytes() for path in names}
    swaps = 0
    while not stop.is_set():
        for path in names:
            fifo = path.with_name(f".fifo-{path.name}")  # hidden: never scanned itself
            os.mkfifo(fifo)
            os.replace(fifo, path)
            time.sleep(0.001)
            regular = path.with_name(f".new-{path.name}")
            regular.write_bytes(originals[path])
            os.replace(regular, path)
            swaps += 1
    return swaps


def test_a_fifo_swapped_in_and_out_never_blocks_a_reload(
    tmp_seeds: Path, write_seed: Callable[..., Path], start_gunicorn: Callable[..., GunicornServer]
) -> None:
    swapped = [write_seed(f"swapped{n}.txt") for n in range(8)]
    write_seed("story.txt")
    story_url = "https://example.com/articles/story"
    server = start_gunicorn(tmp_seeds, env={"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL)})
    paths = ("/feed.json",)
    assert all(story_url in seen for seen in _gunicorn_urls(server, paths))

    stop = threading.Event()
    swaps: list[int] = []
    swapper = threading.Thread(
        target=lambda: swaps.append(_swap_fifos_in_and_out(swapped, stop)), daemon=True
    )
    swapper.start()
    try:
        # Let several reloads run into the swapping, then unpublish: it must still arrive.
        first = _healthz(server)["last_reload"]
        _wait_for(lambda: _healthz(server)["last_reload"] != first, "a reload while swapping")
        time.sleep(3 * INTERVAL)
        write_seed("story.txt", published=False)
        _later(tmp_seeds / "story.txt", 5)
        _wait_for(
            lambda: all(story_url not in seen for seen in _gunicorn_urls(server, paths)),
            "the unpublish reaching every worker while FIFOs come and go",
        )
    finally:
        stop.set()
        swapper.join(timeout=30)
    assert swaps and swaps[0] > 0
    # Every swapped file is regular again: all are served again, nothing good lost.
    swapped_urls = {f"https://example.com/articles/swapped{n}" for n in range(8)}
    _wait_for(
        lambda: all(swapped_urls <= seen for seen in _gunicorn_urls(server, paths)),
        "the swapped files served again",
    )
    assert "Traceback" not in server.output()


# --- names that are not UTF-8 ----------------------------------------------------------------

MISNAMED_FILE = b"\xff\xfe.md"
MISNAMED_SHOWN = "\\xff\\xfe.md"  # as check, /healthz and the log show it


def _misname(seeds: Path, good: str, name: bytes) -> None:
    """Rename a seed file to a name that is not UTF-8, as `os.rename` with bytes can."""
    os.rename(os.fsencode(seeds / good), os.fsencode(seeds) + b"/" + name)


@pytest.fixture
def misnamed(tmp_seeds: Path, write_seed: Callable[..., Path]) -> Path:
    """tmp_seeds with a good file, a published seed file named `\\xff\\xfe.md` and a folder
    named `\\xfe` holding another."""
    write_seed("good.txt")
    write_seed("bad.md")
    _misname(tmp_seeds, "bad.md", MISNAMED_FILE)
    write_seed("folder/inner.md")
    _misname(tmp_seeds, "folder", b"\xfe")
    return tmp_seeds


def test_names_that_are_not_utf8_are_skipped_and_reported_by_check(
    misnamed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", str(misnamed)]) == 1
    out = capsys.readouterr().out
    assert f"{MISNAMED_SHOWN}: skipped: file name is not valid UTF-8\n" in out
    assert "\\xfe/: skipped: folder name is not valid UTF-8; nothing in it is read\n" in out
    assert "1 files, 1 articles, 1 published" in out


def test_names_that_are_not_utf8_are_in_healthz_and_the_snapshot_is_written(
    misnamed: Path,
    tmp_path: Path,
    make_app: Callable[..., Flask],
    write_seed: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for cache_dir in ("", str(tmp_path / "cache")):  # snapshots off, and on
        app = make_app(misnamed, base_url=TEST_BASE_URL, cache_dir=cache_dir)
        client = app.test_client()
        response = client.get("/healthz")
        assert response.status_code == 200
        errors = {e["file"]: e for e in response.get_json()["errors"]}
        assert errors[MISNAMED_SHOWN]["skipped"] is True
        assert "\\xfe/" in errors
        assert [i["url"] for i in client.get("/feed.json").get_json()["items"]] == [
            "https://example.com/articles/good"
        ]
    assert list((tmp_path / "cache").glob("*.snapshot"))
    assert f"skipping {MISNAMED_SHOWN}: its name is not valid UTF-8" in caplog.text
    # One appearing while serving (here: a reload) is reported too, and goes when renamed.
    store = app.extensions["feedserver.store"]
    write_seed("sub/late.md")
    store.reload()
    _misname(misnamed, "sub/late.md", b"sub/late\xe9.md")
    store.reload()
    assert "sub/late\\xe9.md" in {p.file for p in store.catalog.problems}
    os.rename(os.fsencode(misnamed) + b"/sub/late\xe9.md", misnamed / "sub" / "late.md")
    store.reload()
    assert "sub/late\\xe9.md" not in {p.file for p in store.catalog.problems}
    assert "https://example.com/articles/late" in {a.url for a in store.catalog.everything.articles}


def test_build_beside_names_that_are_not_utf8(misnamed: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "feedserver", "build", str(tmp_path / "site")]
    command += ["--base-url", TEST_BASE_URL, "--seeds", str(misnamed)]
    env = {**os.environ, "FEEDSERVER_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"skipping {MISNAMED_SHOWN}" in result.stderr
    assert (tmp_path / "site" / "feed.rss").is_file()


def test_gunicorn_starts_serves_and_restarts_beside_names_that_are_not_utf8(
    misnamed: Path,
    tmp_path: Path,
    write_seed: Callable[..., Path],
    start_gunicorn: Callable[..., GunicornServer],
) -> None:
    env = {"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL), "FEEDSERVER_CACHE_DIR": str(tmp_path)}
    server = start_gunicorn(misnamed, env=env)
    good = "https://example.com/articles/good"
    assert all(seen == {good} for seen in _gunicorn_urls(server, ("/feed.json",)))
    assert all(
        MISNAMED_SHOWN in {e["file"] for e in _healthz(server)["errors"]} for _ in range(REQUESTS)
    )
    # One that appears while serving: reported, and the next start is no outage.
    write_seed("late.md")
    _misname(misnamed, "late.md", b"late\xe9.md")
    _wait_for(
        lambda: all(
            "late\\xe9.md" in {e["file"] for e in _healthz(server)["errors"]}
            for _ in range(REQUESTS)
        ),
        "/healthz naming the file that arrived",
    )
    server.stop()
    again = start_gunicorn(misnamed, env=env)
    assert all(seen == {good} for seen in _gunicorn_urls(again, ("/feed.json",)))
    for log in (server.output(), again.output()):
        assert "Traceback" not in log and "Worker failed to boot" not in log
        assert f"skipping {MISNAMED_SHOWN}: its name is not valid UTF-8" in log


def test_a_broken_takedown_copy_keeps_its_url_down_under_gunicorn(
    tmp_seeds: Path, tmp_path: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    newer = _two_copies(tmp_seeds, newer_published=False)
    env = {"FEEDSERVER_RELOAD_INTERVAL": str(INTERVAL), "FEEDSERVER_CACHE_DIR": str(tmp_path)}
    server = start_gunicorn(tmp_seeds, env=env)
    paths = ("/feed.json", "/feed.rss")
    assert all(STORY_URL not in seen for seen in _gunicorn_urls(server, paths))
    newer.write_bytes(BROKEN_TAKEDOWNS["tab_indentation"](NEWER_COPY))
    _later(newer, 200)
    _wait_for(
        lambda: all(
            "2024/story.md" in {e["file"] for e in _healthz(server)["errors"]}
            for _ in range(REQUESTS)
        ),
        "every worker reading the broken copy",
    )
    assert all(STORY_URL not in seen for seen in _gunicorn_urls(server, paths))
    server.stop()
    again = start_gunicorn(tmp_seeds, env=env)  # from the snapshot
    assert all(STORY_URL not in seen for seen in _gunicorn_urls(again, paths))
    assert "Traceback" not in server.output() + again.output()

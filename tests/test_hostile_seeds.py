"""The hostile corpus (tests/data/hostile, plus files too big or too odd to keep in git):
each bad file is named with a reason, and every good file beside it is served unchanged."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask import Flask

from feedserver import cli

from .conftest import TEST_BASE_URL

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

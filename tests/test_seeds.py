"""Reading seed files (feedserver.seeds): front matter, required and optional fields,
encodings, unsafe YAML, and which files a directory scan finds."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver import keys
from feedserver.load import fields, seed_file, yaml_loader
from feedserver.load.files import read_seed_text
from feedserver.load.front_matter import front_matter, still_says_published
from feedserver.load.records import ParsedSeed, SeedFile
from feedserver.load.seed_file import parse_seed_file
from feedserver.load.tree import TreeIndex
from feedserver.load.yaml_loader import load_yaml_mapping
from feedserver.models import Article

MAX_BYTES = 1024 * 1024
VALID = (
    "title: A title\n"
    "webUrl: https://example.com/a\n"
    "publishedDateTime: 2020-05-20T14:25:00Z\n"
    "published: true\n"
)

BUNDLED = {
    "000_17b6bf656801d13b.txt": (
        "https://hothardware.com/news/openai-supercomputer-by-microsoft",
        True,
        "hothardware.com",
        ("microsoft-ai", "ai"),
    ),
    "001_db4b9f1a9b445236.txt": (
        "https://www.computing.co.uk/news/4015437/microsoft-builds-huge-cloud-ai-supercomputer-openai",
        False,
        "computing.co.uk",
        ("ai-hardware", "ai"),
    ),
    "002_c50e65090671e27a.txt": (
        "https://www.geekwire.com/2020/microsoft-builds-openais-dream-system-azure-supercomputer-rank-among-top-5-world/",
        False,
        "geekwire.com",
        ("azure",),
    ),
    "003_e29929052b0126c7.txt": (
        "https://www.datacenterknowledge.com/microsoft/microsoft-says-it-s-built-top-five-supercomputer-cloud-ai",
        False,
        "datacenterknowledge.com",
        ("azure",),
    ),
    "004_937fc79bfd7e85f5.txt": (
        "https://techcrunch.com/2020/05/19/microsoft-says-it-teamed-up-with-openai-to-build-a-massive-ai-supercomputer-in-azure/",
        True,
        "techcrunch.com",
        ("microsoft-ai", "ai"),
    ),
}


def scan(directory: Path) -> list[SeedFile]:
    """Every seed file under a directory, as the store's scan finds it."""
    return TreeIndex().scan(str(directory)).changed


def parse(directory: Path, name: str, max_bytes: int = MAX_BYTES) -> ParsedSeed:
    """Parse one file of a directory as the store does."""
    (seed,) = [s for s in scan(directory) if s.path == name]
    return parse_seed_file(directory, seed, max_bytes)


def parse_text(tmp_seeds: Path, content: str | bytes, name: str = "seed.txt") -> ParsedSeed:
    path = tmp_seeds / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return parse(tmp_seeds, name)


def article_of(result: ParsedSeed) -> Article:
    assert result.error is None, result.error
    assert result.article is not None
    return result.article


# --- the bundled seeds ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_bundled_seed_parses(bundled_seeds: Path, name: str) -> None:
    url, published, provider, topics = BUNDLED[name]
    result = parse(bundled_seeds, name)
    article = article_of(result)
    assert result.warnings == ()
    assert article.url == url
    assert article.published is published
    assert article.provider is not None
    assert article.provider.key == provider
    assert tuple(topic.key for topic in article.topics) == topics
    assert article.published_at.tzinfo is not None
    assert article.images and article.images[0].width > 0
    assert article.related


def test_bundled_seed_fields(bundled_seeds: Path) -> None:
    article = article_of(parse(bundled_seeds, "000_17b6bf656801d13b.txt"))
    assert article.title == "Microsoft And OpenAI Team To Build A 285,000-Core Azure Supercomputer"
    assert article.published_at == datetime(2020, 5, 20, 14, 25, tzinfo=UTC)
    assert article.excerpt.startswith("Microsoft recently announced")
    assert article.quality == 89
    assert article.heat == 99
    assert article.provider is not None
    assert (article.provider.name, article.provider.domain) == ("HotHardware", "hothardware.com")
    assert [t.name for t in article.topics] == ["Microsoft AI", "AI"]
    image = article.images[0]
    assert image.url.endswith("/microsoft-g-building.jpg")
    assert (image.width, image.height) == (708, 462)
    (related,) = article.related
    assert related.provider_name == "ExtremeTech"
    assert related.url.startswith("https://www.extremetech.com/")


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_secured_and_amp_urls_are_not_kept(bundled_seeds: Path, name: str) -> None:
    raw = yaml.safe_load(front_matter((bundled_seeds / name).read_text("utf-8")))
    article = article_of(parse(bundled_seeds, name))
    field_names = {f.name for f in dataclasses.fields(Article)}
    assert not field_names & {"secured", "ampWebUrl", "cdnAmpWebUrl", "amp_url", "raw"}
    kept = repr(article)
    assert raw["secured"] not in kept
    for key in ("ampWebUrl", "cdnAmpWebUrl"):
        if key in raw:
            assert raw[key] not in kept
    for related in raw.get("related", []):
        for key in ("ampWebUrl", "cdnAmpWebUrl"):
            if key in related:
                assert related[key] not in kept


# --- front matter -----------------------------------------------------------------------


def test_front_matter_is_the_text_between_the_fences() -> None:
    text = "---\ntitle: x\n---\n# Markdown body: [not yaml\n---\nmore"
    assert front_matter(text) == "title: x\n"


def test_body_after_front_matter_is_ignored(tmp_seeds: Path) -> None:
    body = "# Heading: [unclosed\n\n- a list: {\n---\nmore: text\n"
    article = article_of(parse_text(tmp_seeds, f"---\n{VALID}---\n{body}", "a.md"))
    assert article.title == "A title"


def test_file_without_fences_is_one_yaml_mapping(tmp_seeds: Path) -> None:
    article = article_of(parse_text(tmp_seeds, VALID, "whole.yaml"))
    assert article.url == "https://example.com/a"
    assert article.published is True


def test_front_matter_without_closing_fence_is_rejected(tmp_seeds: Path) -> None:
    result = parse_text(tmp_seeds, f"---\n{VALID}")
    assert result.article is None
    assert result.error is not None and "---" in result.error


def test_utf8_bom_is_accepted(tmp_seeds: Path) -> None:
    content = b"\xef\xbb\xbf" + f"---\n{VALID}---\n".encode()
    assert article_of(parse_text(tmp_seeds, content)).title == "A title"


def test_crlf_line_endings_are_accepted(tmp_seeds: Path) -> None:
    content = f"---\n{VALID}excerpt: Two\n---\nbody\n".replace("\n", "\r\n")
    article = article_of(parse_text(tmp_seeds, content))
    assert (article.title, article.excerpt) == ("A title", "Two")
    assert article.url == "https://example.com/a"


def test_non_utf8_is_rejected(tmp_seeds: Path) -> None:
    content = f"---\n{VALID}excerpt: café\n---\n".encode("latin-1")
    result = parse_text(tmp_seeds, content)
    assert result.article is None
    assert result.error is not None and "UTF-8" in result.error


@pytest.mark.parametrize("content", ["", "\n", "   \n\n", "---\n---\n", "# just a comment\n"])
def test_empty_file_is_rejected(tmp_seeds: Path, content: str) -> None:
    result = parse_text(tmp_seeds, content)
    assert result.article is None
    assert result.error is not None and "empty" in result.error


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("title: [unclosed\n", ("invalid YAML", "line")),
        ("---\ntitle: 'x\nwebUrl: y\n---\n", ("invalid YAML",)),
        ("title: x\n  bad: indent\n", ("invalid YAML",)),
        ("- title: x\n- webUrl: y\n", ("list", "not a mapping")),
        ("just a sentence\n", ("not a mapping",)),
        ("---\n42\n---\n", ("not a mapping",)),
    ],
)
def test_unusable_yaml_is_rejected_with_reason(
    tmp_seeds: Path, content: str, words: tuple[str, ...]
) -> None:
    result = parse_text(tmp_seeds, content)
    assert result.article is None
    assert result.error is not None
    for word in words:
        assert word in result.error


def test_deeply_nested_yaml_is_rejected_not_crashing(tmp_seeds: Path) -> None:
    result = parse_text(tmp_seeds, "title: " + "[" * 2500 + "\n")
    assert result.article is None
    assert result.error is not None


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object:builtins.object {{}}",
    ],
)
def test_python_tags_are_never_executed(tmp_seeds: Path, tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "executed"
    content = f"---\n{VALID}exploit: {tag.format(marker=marker)}\n---\n"
    result = parse_text(tmp_seeds, content)
    assert result.article is None
    assert result.error is not None and "invalid YAML" in result.error
    assert not marker.exists()


def test_whole_document_python_tag_is_rejected(tmp_seeds: Path, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    result = parse_text(tmp_seeds, f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert result.article is None
    assert not marker.exists()


# --- required fields --------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["title", "webUrl", "publishedDateTime"])
def test_missing_required_field_rejects_the_file(
    tmp_seeds: Path, write_seed: Callable[..., Path], missing: str
) -> None:
    write_seed("a.txt", omit=(missing,))
    result = parse(tmp_seeds, "a.txt")
    assert result.article is None
    assert result.error is not None
    assert missing in result.error


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", ""),
        ("title", None),
        ("title", ["a", "list"]),
        ("webUrl", None),
        ("webUrl", ""),
        ("publishedDateTime", None),
        ("publishedDateTime", "May 20 2020"),
        ("publishedDateTime", "2020-13-45"),
        ("publishedDateTime", 12345),
    ],
)
def test_unusable_required_field_rejects_the_file(
    tmp_seeds: Path, write_seed: Callable[..., Path], field: str, value: object
) -> None:
    write_seed("a.txt", **{field: value})
    result = parse(tmp_seeds, "a.txt")
    assert result.article is None
    assert result.error is not None and field in result.error


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "/relative/path",
        "relative/path.html",
        "//example.com/no-scheme",
        "ftp://example.com/file",
        "mailto:editor@example.com",
        "data:text/html,<script>alert(1)</script>",
        "http://",
        "https://example.com/with space",
    ],
)
def test_non_http_web_url_rejects_the_file(
    tmp_seeds: Path, write_seed: Callable[..., Path], url: str
) -> None:
    write_seed("a.txt", webUrl=url)
    result = parse(tmp_seeds, "a.txt")
    assert result.article is None
    assert result.error is not None and "webUrl" in result.error


@pytest.mark.parametrize("url", ["http://example.com/a", "HTTPS://Example.com/a?b=1&c=2#d"])
def test_http_and_https_web_urls_are_accepted(
    tmp_seeds: Path, write_seed: Callable[..., Path], url: str
) -> None:
    write_seed("a.txt", webUrl=url)
    assert article_of(parse(tmp_seeds, "a.txt")).url == url


# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2020-05-20T14:25:00Z", datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ("2020-05-20T14:25:00", datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ("2020-05-20 14:25:00", datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ("2020-05-20T16:25:00+02:00", datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ("2020-05-20", datetime(2020, 5, 20, tzinfo=UTC)),
        ('"2020-05-20T14:25:00Z"', datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ("'2020-05-20T14:25:00'", datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ('"2020-05-20T10:25:00-04:00"', datetime(2020, 5, 20, 14, 25, tzinfo=UTC)),
        ('"2020-05-20"', datetime(2020, 5, 20, tzinfo=UTC)),
    ],
)
def test_published_date_time_forms(tmp_seeds: Path, written: str, expected: datetime) -> None:
    content = (
        f"title: T\nwebUrl: https://example.com/a\npublished: true\npublishedDateTime: {written}\n"
    )
    published_at = article_of(parse_text(tmp_seeds, content)).published_at
    assert published_at == expected
    assert published_at.utcoffset() is not None
    assert published_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# --- published --------------------------------------------------------------------------


def test_published_true_is_published(tmp_seeds: Path) -> None:
    result = parse_text(tmp_seeds, VALID)
    assert article_of(result).published is True
    assert result.warnings == ()


def test_published_false_is_withheld_silently(tmp_seeds: Path) -> None:
    result = parse_text(tmp_seeds, VALID.replace("published: true", "published: false"))
    assert article_of(result).published is False
    assert result.warnings == ()


@pytest.mark.parametrize(
    "line",
    [
        None,
        'published: "true"',
        "published: 'True'",
        "published: 1",
        "published: null",
        "published: [true]",
    ],
)
def test_published_not_boolean_true_is_withheld_with_warning(
    tmp_seeds: Path, line: str | None
) -> None:
    content = VALID.replace("published: true\n", f"{line}\n" if line else "")
    result = parse_text(tmp_seeds, content)
    assert article_of(result).published is False
    assert any("published" in warning for warning in result.warnings), result.warnings


@pytest.mark.parametrize("word", ["yes", "on", "Yes", "no", "off"])
def test_published_yaml11_words_are_withheld_as_the_readme_says(tmp_seeds: Path, word: str) -> None:
    result = parse_text(tmp_seeds, VALID.replace("published: true", f"published: {word}"))
    assert article_of(result).published is False
    assert any("published" in warning for warning in result.warnings)


@pytest.mark.parametrize("word", ["No", "yes", "On", "off"])
def test_yaml11_boolean_words_stay_text(tmp_seeds: Path, word: str) -> None:
    content = VALID.replace("title: A title", f"title: {word}") + f"excerpt: {word}\n"
    article = article_of(parse_text(tmp_seeds, content))
    assert (article.title, article.excerpt) == (word, word)


# --- optional fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "attribute", "dropped"),
    [
        ("topics", "AI", "topics", ()),
        ("topics", {"name": "AI"}, "topics", ()),
        ("provider", "TechCrunch", "provider", None),
        ("provider", ["TechCrunch"], "provider", None),
        ("quality", "high", "quality", None),
        ("quality", True, "quality", None),
        ("heat", [1, 2], "heat", None),
        ("excerpt", {"text": "x"}, "excerpt", ""),
        ("images", "https://example.com/i.jpg", "images", ()),
        ("related", {"title": "x"}, "related", ()),
    ],
)
def test_optional_field_of_wrong_type_is_dropped_with_warning(
    tmp_seeds: Path,
    write_seed: Callable[..., Path],
    field: str,
    value: object,
    attribute: str,
    dropped: object,
) -> None:
    write_seed("a.txt", **{field: value})
    result = parse(tmp_seeds, "a.txt")
    article = article_of(result)
    assert getattr(article, attribute) == dropped
    assert any(field in warning for warning in result.warnings), result.warnings
    assert article.title == "Test article a"
    assert article.published is True


def test_topic_items_that_are_not_names_are_dropped(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", topics=["AI", {"x": 1}, "", None, ["nested"], "Cloud", "ai"])
    result = parse(tmp_seeds, "a.txt")
    assert [(t.key, t.name) for t in article_of(result).topics] == [
        ("ai", "AI"),
        ("cloud", "Cloud"),
    ]
    assert len([w for w in result.warnings if "topic" in w]) == 4


def test_images_and_related_without_http_urls_are_dropped(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed(
        "a.txt",
        images=[
            {"url": "javascript:alert(1)", "width": 10, "height": 10},
            {"url": "https://example.com/good.jpg", "width": "wide", "height": -4},
            "not a mapping",
        ],
        related=[
            {"title": "Evil", "webUrl": "javascript:alert(1)"},
            {"webUrl": "https://example.com/untitled"},
            {"title": "Good", "webUrl": "https://example.com/good", "provider": {"name": "P"}},
            "not a mapping",
        ],
    )
    result = parse(tmp_seeds, "a.txt")
    article = article_of(result)
    assert [(i.url, i.width, i.height) for i in article.images] == [
        ("https://example.com/good.jpg", 0, 0)
    ]
    assert [(r.title, r.url, r.provider_name) for r in article.related] == [
        ("Good", "https://example.com/good", "P")
    ]
    assert len(result.warnings) == 5


@pytest.mark.parametrize(
    ("provider", "key", "name", "domain"),
    [
        (
            {"name": "TechCrunch", "domain": "WWW.TechCrunch.com"},
            "techcrunch.com",
            "TechCrunch",
            "techcrunch.com",
        ),
        (
            {"name": "TechCrunch", "domain": "techcrunch.com."},
            "techcrunch.com",
            "TechCrunch",
            "techcrunch.com",
        ),
        ({"name": "Some Blog"}, "some-blog", "Some Blog", ""),
        ({"name": "Some Blog", "domain": ""}, "some-blog", "Some Blog", ""),
        ({"domain": "www.example.org"}, "example.org", "example.org", "example.org"),
    ],
)
def test_provider_key(
    tmp_seeds: Path,
    write_seed: Callable[..., Path],
    provider: dict[str, str],
    key: str,
    name: str,
    domain: str,
) -> None:
    write_seed("a.txt", provider=provider)
    found = article_of(parse(tmp_seeds, "a.txt")).provider
    assert found is not None
    assert (found.key, found.name, found.domain) == (key, name, domain)


def test_provider_without_name_or_domain_is_dropped(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", provider={"images": []})
    result = parse(tmp_seeds, "a.txt")
    assert article_of(result).provider is None
    assert any("provider" in warning for warning in result.warnings)


def test_characters_xml_cannot_carry_are_removed(tmp_seeds: Path) -> None:
    content = (
        'title: "A\\x01B\\x0bC\\uFFFE"\nexcerpt: "x\\x00y"\n'
        "webUrl: https://example.com/a\npublishedDateTime: 2020-05-20\npublished: true\n"
    )
    article = article_of(parse_text(tmp_seeds, content))
    assert (article.title, article.excerpt) == ("ABC", "xy")


# --- size limit -------------------------------------------------------------------------


def test_file_over_max_file_bytes_is_refused(tmp_seeds: Path) -> None:
    content = f"---\n{VALID}excerpt: {'x' * 3000}\n---\n"
    (tmp_seeds / "big.txt").write_text(content, "utf-8")
    result = parse(tmp_seeds, "big.txt", max_bytes=2048)
    assert result.article is None
    assert result.error is not None and "2048" in result.error
    assert article_of(parse(tmp_seeds, "big.txt", max_bytes=4096)).title == "A title"


def test_read_seed_text_refuses_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * 1025)
    with pytest.raises(Exception, match="1024"):
        read_seed_text(path, 1024)
    assert read_seed_text(path, 1025) == "a" * 1025


# --- scanning ---------------------------------------------------------------------------


def test_scan_finds_seed_files_recursively_and_skips_the_rest(tmp_seeds: Path) -> None:
    kept = [
        "a.txt",
        "b.md",
        "c.yaml",
        "d.yml",
        "UPPER.TXT",
        "sub/e.txt",
        "sub/deeper/f.md",
    ]
    skipped = [
        "notes.json",
        "readme",
        "image.jpg",
        "a.txt.bak",
        "foo~",
        "foo.txt~",
        "#foo.txt#",
        ".hidden.txt",
        ".a.txt.swp",
        "a.txt.swp",
        ".git/config.txt",
        ".git/objects/x.yaml",
        ".cache/sub/g.md",
        "sub/.hidden/h.txt",
        "sub/.i.txt",
    ]
    for name in kept + skipped:
        path = tmp_seeds / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(VALID, "utf-8")
    found = sorted(seed.path for seed in scan(tmp_seeds))
    assert found == sorted(kept)


def test_scan_reports_size_and_mtime(tmp_seeds: Path) -> None:
    path = tmp_seeds / "a.txt"
    path.write_text(VALID, "utf-8")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    (seed,) = scan(tmp_seeds)
    assert isinstance(seed, SeedFile)
    assert seed.size == len(VALID.encode())
    assert seed.mtime_ns == 1_600_000_000 * 10**9


def test_scan_skips_symlinks_leading_outside(tmp_seeds: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(VALID, "utf-8")
    (tmp_seeds / "inside.txt").write_text(VALID, "utf-8")
    (tmp_seeds / "link-out.txt").symlink_to(outside / "secret.txt")
    (tmp_seeds / "link-in.txt").symlink_to(tmp_seeds / "inside.txt")
    (tmp_seeds / "linked-dir").symlink_to(outside, target_is_directory=True)
    found = sorted(seed.path for seed in scan(tmp_seeds))
    assert found == ["inside.txt", "link-in.txt"]


def test_scan_of_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        scan(tmp_path / "missing")


# --- robustness -------------------------------------------------------------------------

_FRAGMENTS = [
    "---\n",
    "title: x\n",
    "webUrl: https://e.com/a\n",
    "publishedDateTime: 2020-01-01\n",
    "published: true\n",
    "topics: [a, b]\n",
    "images: [{url: 1}]\n",
    "related: [1, {title: t}]\n",
    "provider: {name: 1, domain: [2]}\n",
    "[",
    "{",
    "- ",
    ": ",
    "&a x\n",
    "*a\n",
    "!!python/tuple [1]\n",
    "\t",
    "\r\n",
    "\x00",
]


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map(lambda f: "".join(f).encode()),
    )
)
def test_parsing_never_raises(tmp_seeds: Path, content: bytes) -> None:
    path = tmp_seeds / "fuzz.txt"
    path.write_bytes(content)
    (seed,) = scan(tmp_seeds)
    result = parse_seed_file(tmp_seeds, seed, MAX_BYTES)
    assert (result.article is None) != (result.error is None)


def test_load_yaml_mapping_returns_plain_mapping() -> None:
    data = load_yaml_mapping("a: 1\nb: [x, y]\n")
    assert data == {"a": 1, "b": ["x", "y"]}


# --- every failure of the YAML constructors is the file's error, at its line -------------

# Values the scanner accepts and a constructor refuses, each with what the error must say.
CONSTRUCTOR_ERRORS = {
    "february 30": ("publishedDateTime: 2024-02-30", "'2024-02-30' is not a valid timestamp"),
    "year 0": ("publishedDateTime: 0000-01-01", "'0000-01-01' is not a valid timestamp"),
    "offset +25:00": ("updated: 2024-01-01T10:00:00+25:00", "is not a valid timestamp"),
    "month 13 in text": ("excerpt: 2024-13-45", "'2024-13-45' is not a valid timestamp"),
    "timestamp tag": ("updated: !!timestamp next week", "'next week' is not a valid timestamp"),
    "int 0x": ("quality: !!int 0x", "'0x' is not a valid int"),
    "int words": ("quality: !!int twelve", "'twelve' is not a valid int"),
    "int too long": ("quality: " + "9" * 5000, "is not a valid int"),
    "float abc": ("heat: !!float abc", "'abc' is not a valid float"),
    "bool maybe": ("published: !!bool maybe", "'maybe' is not a valid bool"),
    "bool empty": ("published: !!bool", "'' is not a valid bool"),
    "binary": ("excerpt: !!binary é", "failed to convert base64 data"),
    "unknown tag": (
        "excerpt: !secret x",
        "could not determine a constructor for the tag '!secret'",
    ),
    "unknown global tag": ("excerpt: !!nonsense x", "could not determine a constructor"),
    "str tag on a list": ("title: !!str [a]", "expected a scalar node"),
    "map tag on text": ("provider: !!map text", "expected a mapping"),
    "unhashable key": ("x: {[a, b]: c}", "unhashable key"),
    "set tag on text": ("topics: !!set text", "expected a mapping"),
    "omap of text": ("related: !!omap [a]", "expected a mapping of length 1"),
    "bad merge": ("provider: {<<: text}", "expected a mapping or list of mappings"),
}


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with libyaml's loader and again with PyYAML's pure-Python one (used for
    deeply nested files)."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_loader, "YamlLoader", yaml_loader.PurePythonLoader)
    else:
        assert yaml_loader.YamlLoader.__name__ == "SeedCSafeLoader"
    return str(request.param)


@pytest.mark.parametrize("case", sorted(CONSTRUCTOR_ERRORS))
def test_a_constructor_error_is_the_files_error_with_its_line(
    tmp_seeds: Path, loader: str, case: str
) -> None:
    line, words = CONSTRUCTOR_ERRORS[case]
    # The bad value is on line 6 of the file: the fence, then four good lines.
    result = parse_text(tmp_seeds, f"---\n{VALID}{line}\nexcerpt2: after\n---\nbody\n")
    assert result.article is None
    assert result.error is not None
    assert result.error.startswith("invalid YAML at line 6: "), result.error
    assert words in result.error


def test_a_value_too_big_to_print_is_dropped_not_fatal(tmp_seeds: Path) -> None:
    huge = "0x" + "f" * 5000  # an int of 6,000 decimal digits: str() of it raises
    result = parse_text(tmp_seeds, f"title: {huge}\nquality: {huge}\n" + VALID.split("\n", 1)[1])
    assert result.error == "'title' must be text, got a single value"
    result = parse_text(tmp_seeds, f"{VALID}quality: {huge}\nheat: 1e999\n")
    assert article_of(result).quality is None and article_of(result).heat is None
    assert len(result.warnings) == 2


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (f"---\n{VALID}bad: !secret x\n---\n", "line 6"),  # after the opening fence
        (f"{VALID}bad: !secret x\n", "line 5"),  # a whole-file mapping
        (f"\ufeff---\n{VALID}bad: !secret x\n---\n", "line 6"),  # a byte order mark
        (f"---\n{VALID}bad: !secret x\n---\n".replace("\n", "\r\n"), "line 6"),  # CRLF
        (f"---\n{VALID}\tbad: x\n---\n", "line 6"),  # a scanner error
        (f"---\n# comment\n\n{VALID}\ttitle: x\n---\n", "line 8"),
    ],
)
def test_yaml_error_lines_are_counted_in_the_file(
    tmp_seeds: Path, loader: str, content: str, line: str
) -> None:
    result = parse_text(tmp_seeds, content)
    assert result.error is not None and f"invalid YAML at {line}: " in result.error, result.error


# --- duplicate keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            f"---\npublished: false\n{VALID}---\n",
            "invalid YAML at line 6: duplicate key 'published' (first at line 2)",
        ),
        (
            f"---\n{VALID}provider:\n  name: A\n  domain: a.com\n  name: B\n---\n",
            "invalid YAML at line 9: duplicate key 'name' (first at line 7)",
        ),
        (
            f"{VALID}related:\n  - {{title: a, title: b}}\n",
            "invalid YAML at line 6: duplicate key 'title' (first at line 6)",
        ),
        (f"{VALID}topics: !!set {{a, a}}\n", "duplicate key 'a'"),
        (f"{VALID}base: &b {{x: 1}}\nm:\n  <<: *b\n  x: 2\n  x: 3\n", "duplicate key 'x'"),
    ],
)
def test_duplicate_keys_are_an_error(
    tmp_seeds: Path, loader: str, content: str, error: str
) -> None:
    result = parse_text(tmp_seeds, content)
    assert result.article is None
    assert result.error is not None and error in result.error, result.error


def test_merge_keys_may_still_be_overridden(tmp_seeds: Path, loader: str) -> None:
    content = (
        f"{VALID}defaults: &defaults {{name: Base, domain: base.example}}\n"
        "provider:\n  <<: *defaults\n  name: Override\n"
    )
    article = article_of(parse_text(tmp_seeds, content))
    assert article.provider is not None
    assert (article.provider.name, article.provider.key) == ("Override", "base.example")


def test_merges_of_merged_mappings_are_not_duplicates(loader: str) -> None:
    # `inner` is flattened while `c` merges it, before `inner` itself is built. How a merge
    # of a merged mapping resolves is PyYAML's to decide (releases differ): the answer must
    # be PyYAML's own safe loader's, with no duplicate-key error.
    document = (
        "a: &a {x: 1}\nb:\n  inner: &i {<<: *a, x: 2}\nc: {<<: *i, y: 3}\nd: {<<: [*a, *i], x: 5}\n"
    )
    stock = yaml.CSafeLoader if loader == "libyaml" else yaml.SafeLoader
    assert load_yaml_mapping(document) == yaml.load(document, Loader=stock)
    assert load_yaml_mapping(document)["d"] == {"x": 5}


def test_duplicate_key_check_does_not_slow_loading() -> None:
    """A mapping without merges pays one length comparison: the loaders must not copy."""
    document = "".join(f"key{n}: value {n}\n" for n in range(50))
    assert len(load_yaml_mapping(document)) == 50
    assert (
        yaml_loader.YamlLoader.construct_mapping is yaml_loader._SeedConstructor.construct_mapping
    )


# --- the published line of a file that failed ----------------------------------------------

GOOD = f"---\n{VALID}excerpt: Text\n---\nBody\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (GOOD.encode(), True),
        (GOOD.replace("title: A title", "title: [broken").encode(), True),
        (GOOD.replace("true", "True # still").encode(), True),
        (GOOD.replace("published: true", '"published": TRUE').encode(), True),
        (GOOD.replace("excerpt: Text", "excerpt: Café").encode("latin-1"), True),
        (GOOD.removesuffix("---\nBody\n").encode(), True),  # no closing fence
        (("\ufeff" + GOOD).encode(), True),
        (b"", False),
        (b"---\npublished: false\n---\n", False),
        (GOOD.replace("published: true", "published: false").encode(), False),
        (GOOD.replace("published: true", "published: yes").encode(), False),
        (GOOD.replace("published: true", "published: 'true'").encode(), False),
        (GOOD.replace("published: true", "published: true false").encode(), False),
        (GOOD.replace("published: true", "published: false\npublished: true").encode(), False),
        (GOOD.replace("published: true", "\tpublished: false").encode(), False),
        (GOOD.replace("published: true", "# published: true").encode(), False),
        (GOOD.replace("published: true", "").replace("Body", "published: true").encode(), False),
        (
            GOOD.replace("published: true", "published: false")
            .replace("excerpt: Text", "excerpt: Trés")
            .encode("latin-1"),
            False,
        ),
    ],
)
def test_still_says_published(content: bytes, says: bool) -> None:
    assert still_says_published(content) is says


def test_a_failed_file_says_whether_it_is_still_published(tmp_seeds: Path) -> None:
    broken = GOOD.replace("title: A title", "title: [broken")
    assert parse_text(tmp_seeds, broken).still_published is True
    assert parse_text(tmp_seeds, broken.replace("true", "false")).still_published is False
    assert parse_text(tmp_seeds, broken.encode("utf-16")).still_published is False
    assert parse_text(tmp_seeds, GOOD).still_published is False  # only asked of failures


# --- only regular files are opened, and nothing blocks ---------------------------------------


def _parse_within(directory: Path, seed: SeedFile, seconds: float = 30.0) -> ParsedSeed:
    """parse_seed_file in a thread: a blocking open would otherwise hang the test run."""
    results: list[ParsedSeed] = []
    thread = threading.Thread(
        target=lambda: results.append(parse_seed_file(directory, seed, MAX_BYTES)), daemon=True
    )
    thread.start()
    thread.join(seconds)
    assert results, "parse_seed_file blocked"
    return results[0]


def _swap_after_scan(directory: Path, make: Callable[[Path], object]) -> ParsedSeed:
    (directory / "a.txt").write_text(VALID, "utf-8")
    (seed,) = scan(directory)
    (directory / "a.txt").unlink()
    make(directory / "a.txt")
    return _parse_within(directory, seed)


def test_a_fifo_swapped_in_after_the_scan_is_refused_without_blocking(tmp_seeds: Path) -> None:
    result = _swap_after_scan(tmp_seeds, os.mkfifo)
    assert result.error == "is a named pipe (FIFO), not a regular file; not read"
    # Its signature matches nothing, so the next reload looks at the path again.
    assert result.file.size == -1


def test_a_socket_swapped_in_is_refused(tmp_seeds: Path) -> None:
    sockets = []

    def make(path: Path) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sockets.append(sock)

    try:
        result = _swap_after_scan(tmp_seeds, make)
    finally:
        for sock in sockets:
            sock.close()
    assert result.error == "is a socket, not a regular file; not read"
    assert result.file.size == -1


def test_a_device_swapped_in_is_refused(tmp_seeds: Path) -> None:
    result = _swap_after_scan(tmp_seeds, lambda path: path.symlink_to("/dev/zero"))
    assert result.error == "is a character device, not a regular file; not read"


def test_a_directory_swapped_in_is_refused(tmp_seeds: Path) -> None:
    result = _swap_after_scan(tmp_seeds, lambda path: path.mkdir())
    assert result.error is not None and "directory" in result.error


def test_a_file_that_vanished_is_looked_at_again(tmp_seeds: Path) -> None:
    result = _swap_after_scan(tmp_seeds, lambda path: None)
    assert result.error == "file vanished before it could be read"
    assert result.file.size == -1


def test_files_are_opened_non_blocking_and_close_on_exec(
    tmp_seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags: list[int] = []
    real_open = os.open

    def recording_open(path: Any, flag: int, *args: Any) -> int:
        flags.append(flag)
        return real_open(path, flag, *args)

    monkeypatch.setattr(os, "open", recording_open)
    article_of(parse_text(tmp_seeds, VALID))
    assert flags and all(f & os.O_NONBLOCK and f & os.O_CLOEXEC for f in flags)


def test_a_symlink_inside_the_seeds_dir_is_still_followed(tmp_seeds: Path) -> None:
    (tmp_seeds / "real.txt").write_text(VALID, "utf-8")
    (tmp_seeds / "link.txt").symlink_to(tmp_seeds / "real.txt")
    assert article_of(parse(tmp_seeds, "link.txt")).title == "A title"


def test_a_file_changed_after_the_scan_is_recorded_as_read(tmp_seeds: Path) -> None:
    path = tmp_seeds / "a.txt"
    path.write_text(VALID, "utf-8")
    (seed,) = scan(tmp_seeds)
    path.write_text(VALID.replace("A title", "Newer title"), "utf-8")
    os.utime(path, ns=(seed.mtime_ns + 10**9, seed.mtime_ns + 10**9))
    result = parse_seed_file(tmp_seeds, seed, MAX_BYTES)
    assert article_of(result).title == "Newer title"
    (rescanned,) = scan(tmp_seeds)
    assert result.file == rescanned  # the next reload sees it unchanged


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "same"),
    [
        (["Microsoft AI", "microsoft  ai", "Mícrosoft AI", " MICROSOFT\tAI "], True),
        (["C", "C++", "C#"], False),
        (["R&D", "R D"], False),
        (["AT&T", "AT&amp;T"], True),
        (["Café", "cafe", "CAFÉ"], True),
    ],
)
def test_topic_slugs(names: list[str], same: bool) -> None:
    slugs = {keys.name_slug(name) for name in names}
    assert len(slugs) == (1 if same else len(names)), slugs


def test_symbol_names_get_spelled_out_slugs() -> None:
    assert [keys.name_slug(n) for n in ("C", "C++", "C#", "R&D", "@home")] == [
        "c",
        "c-plus-plus",
        "c-sharp",
        "r-and-d",
        "at-home",
    ]


@pytest.mark.parametrize(
    "key", ["news.rss", "news.atom", "news.json", "x" * 101, "-".join(["long"] * 100)]
)
def test_unsafe_keys_are_shortened_with_a_hash(key: str) -> None:
    safe = keys.safe_key(key)
    assert safe != key and safe == keys.safe_key(key)  # deterministic
    assert len(safe) <= keys.MAX_KEY_LENGTH
    assert not safe.endswith((".rss", ".atom", ".json"))
    assert safe.startswith(key[:4])
    assert keys.safe_key(key + "x") != safe


def test_safe_keys_are_kept() -> None:
    for key in ("techcrunch.com", "microsoft-ai", "x" * 100, "rss", "feeds.example.com"):
        assert keys.safe_key(key) == key


@pytest.mark.parametrize(
    ("domain", "key"),
    [
        ("example.org\n", "example.org"),  # cleaned like every text
        ("exa\nmple.org", "exa-mple-org"),  # not a host name
        ("news.RSS", "news.rss-"),
        ("-bad-.example", "bad-example"),
        ("a" * 64 + ".example", "a" * 64 + "-example"),  # a label over 63 characters
    ],
)
def test_provider_domains_are_validated_whole(
    tmp_seeds: Path, write_seed: Callable[..., Path], domain: str, key: str
) -> None:
    write_seed("a.txt", provider={"name": "P", "domain": domain})
    result = parse(tmp_seeds, "a.txt")
    provider = article_of(result).provider
    assert provider is not None
    if key.endswith("-"):
        assert provider.key.startswith(key) and len(provider.key) == len(key) + 12
        assert result.warnings == (
            f"provider key 'news.rss' ends like a feed; its key is '{provider.key}'",
        )
    else:
        assert provider.key == key


def test_a_long_topic_gets_a_safe_key_and_a_warning(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", topics=["word " * 80])
    result = parse(tmp_seeds, "a.txt")
    (topic,) = article_of(result).topics
    assert len(topic.key) <= keys.MAX_KEY_LENGTH and topic.name == ("word " * 80).strip()
    (warning,) = result.warnings
    assert warning.startswith("topic key 'word-word-word") and "too long for a file name" in warning


def test_bidi_controls_are_removed_from_every_text(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    bidi = "\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    write_seed(
        "a.txt",
        title=f"Ti{bidi}tle",
        excerpt=f"Ex{bidi}cerpt",
        provider={"name": f"Pro{bidi}vider", "domain": "example.com"},
        topics=[f"To{bidi}pic"],
        images=[{"url": "https://example.com/i.jpg", "title": f"Im{bidi}age"}],
        related=[{"title": f"Re{bidi}lated", "webUrl": "https://example.com/r"}],
    )
    article = article_of(parse(tmp_seeds, "a.txt"))
    assert article.title == "Title" and article.excerpt == "Excerpt"
    assert article.provider is not None and article.provider.name == "Provider"
    assert [t.name for t in article.topics] == ["Topic"]
    assert article.images[0].title == "Image" and article.related[0].title == "Related"
    assert fields.clean_text("a\u202eb\u200dc") == "ab\u200dc"  # a joiner is not a control


# --- any scalar, tagged or not, in any field -------------------------------------------------

_FIELDS = [
    "title",
    "webUrl",
    "publishedDateTime",
    "published",
    "excerpt",
    "quality",
    "heat",
    "provider.name",
    "provider.domain",
    "topics.0",
    "images.0.url",
    "images.0.width",
    "images.0.height",
    "images.0.title",
    "related.0.title",
    "related.0.webUrl",
    "related.0.provider.name",
]
_TAGS = [
    "",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!timestamp ",
    "!!str ",
    "!!binary ",
    "!!null ",
    "!!set ",
    "!!map ",
    "!!seq ",
    "!!omap ",
    "!unknown ",
    "!!python/name:os.system ",
    "!<tag:example.com,2024:x> ",
]
_TRICKY_SCALARS = [
    "2024-02-30",
    "0000-01-01",
    "2024-01-01T10:00:00+25:00",
    "2024-01-01 10:00:00 -99:99",
    "9999-12-31T23:59:59-23:59",
    "0x",
    "0o",
    "0b",
    "0x" + "f" * 4000,
    "1" * 5000,
    "1_000",
    "190:20:30",
    "-.inf",
    ".nan",
    "1e999",
    "abc",
    "maybe",
    "~",
    "null",
    "true",
    "''",
    '"\\x00\\u202e"',
    "[a, b]",
    "{a: b}",
    "*missing",
    "&anchor x",
]


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    field=st.sampled_from(_FIELDS),
    tag=st.sampled_from(_TAGS),
    scalar=st.one_of(
        st.sampled_from(_TRICKY_SCALARS),
        st.text(max_size=40).map(json.dumps),  # any text, double-quoted
        st.from_regex(r"[-+0-9.:TZ _xobe]{0,30}", fullmatch=True),  # numbers, dates, times
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
    ),
)
def test_any_scalar_in_any_field_never_raises(
    tmp_seeds: Path, field: str, tag: str, scalar: str
) -> None:
    data: dict[str, Any] = {
        "title": "T",
        "webUrl": "https://example.com/a",
        "publishedDateTime": "2020-01-01T00:00:00Z",
        "published": True,
        "excerpt": "E",
        "quality": 1,
        "heat": 2,
        "provider": {"name": "P", "domain": "p.example"},
        "topics": ["A"],
        "images": [{"url": "https://example.com/i.jpg", "width": 1, "height": 1, "title": "I"}],
        "related": [{"title": "R", "webUrl": "https://example.com/r", "provider": {"name": "Q"}}],
    }
    marker = "@@VALUE@@"
    *parents, last = field.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = marker
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    text = text.replace(f"'{marker}'", marker).replace(marker, tag + scalar)
    for content in (f"---\n{text}---\n", text):
        result = parse_text(tmp_seeds, content)
        assert (result.article is None) != (result.error is None)
        assert result.error is None or "\n" not in result.error


def test_an_unforeseen_exception_is_still_the_files_error(
    tmp_seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(data: dict[str, Any], body: str = "") -> Any:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(seed_file, "article_from_mapping", failing)
    result = parse_text(tmp_seeds, f"---\n{VALID}---\n")
    assert result.error == "cannot be used (RuntimeError: a bug over two lines)"
    assert result.still_published is True

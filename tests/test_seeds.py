"""Reading seed files (feedserver.seeds): front matter, required and optional fields,
encodings, unsafe YAML, and which files a directory scan finds."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver.models import Article
from feedserver.seeds import (
    ParsedSeed,
    SeedFile,
    front_matter,
    load_yaml_mapping,
    parse_seed_file,
    read_seed_text,
    scan_seed_files,
)

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


def parse(directory: Path, name: str, max_bytes: int = MAX_BYTES) -> ParsedSeed:
    """Parse one file of a directory as the store does."""
    (seed,) = [s for s in scan_seed_files(directory) if s.path == name]
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
    found = sorted(seed.path for seed in scan_seed_files(tmp_seeds))
    assert found == sorted(kept)


def test_scan_reports_size_and_mtime(tmp_seeds: Path) -> None:
    path = tmp_seeds / "a.txt"
    path.write_text(VALID, "utf-8")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    (seed,) = scan_seed_files(tmp_seeds)
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
    found = sorted(seed.path for seed in scan_seed_files(tmp_seeds))
    assert found == ["inside.txt", "link-in.txt"]


def test_scan_of_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(scan_seed_files(tmp_path / "missing"))


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
    (seed,) = scan_seed_files(tmp_seeds)
    result = parse_seed_file(tmp_seeds, seed, MAX_BYTES)
    assert (result.article is None) != (result.error is None)


def test_load_yaml_mapping_returns_plain_mapping() -> None:
    data = load_yaml_mapping("a: 1\nb: [x, y]\n")
    assert data == {"a": 1, "b": ["x", "y"]}

"""Every feed, served by a real gunicorn, checked with the W3C Feed Validation Service's code.

The validator is found where the project's shared tools sit beside the repository
(`../shared/tools/feedvalidator` and its `w3c-validate` script), or where FEEDVALIDATOR (a
checkout of w3c/feedvalidator, or its `src/feedvalidator` package folder's parent) and
W3C_VALIDATE name it. The validator needs lxml, html5lib and rdflib (the test extra has them).
Where no validator is found the tests skip, saying why.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from feedserver.load.bodies import ALLOWED_TAGS

from .conftest import GunicornServer

BUNDLED_SEEDS = Path(__file__).resolve().parent.parent / "seeds"
VALIDATE_TIMEOUT = 300


SHARED_TOOLS = Path(__file__).resolve().parent.parent.parent / "shared" / "tools"


def _has_validator_package(folder: Path) -> bool:
    """A w3c/feedvalidator checkout (src/feedvalidator) or its package's parent folder."""
    return (folder / "src" / "feedvalidator").is_dir() or (
        folder / "feedvalidator" / "__init__.py"
    ).is_file()


def validator() -> tuple[str, str]:
    """(validator folder, w3c-validate script), or skip the test when there is none."""
    checkout = os.environ.get("FEEDVALIDATOR", "") or str(SHARED_TOOLS / "feedvalidator")
    script = os.environ.get("W3C_VALIDATE", "") or str(SHARED_TOOLS / "w3c-validate")
    if not _has_validator_package(Path(checkout)):
        pytest.skip(
            f"no W3C feed validator at {checkout}: set FEEDVALIDATOR to a checkout of "
            "w3c/feedvalidator (and W3C_VALIDATE to its w3c-validate script)"
        )
    if not Path(script).is_file():
        pytest.skip(f"no w3c-validate script at {script}: set W3C_VALIDATE")
    for module in ("lxml", "html5lib", "rdflib"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the W3C validator needs {module}: install the test extra")
    return checkout, script


def run_validator(urls: list[str]) -> subprocess.CompletedProcess[str]:
    checkout, script = validator()
    return subprocess.run(
        [sys.executable, script, *urls],
        env={**os.environ, "FEEDVALIDATOR": checkout},
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT,
        check=False,
    )


def feed_urls(server: GunicornServer) -> list[str]:
    """Every feed of a running server: all, each topic and provider, RSS and Atom, and a
    second page."""
    paths = ["/feed"]
    for listing in ("/topics.json", "/providers.json"):
        status, _, body = server.fetch(listing)
        assert status == 200
        paths += [item["url"].removeprefix(server.url) for item in json.loads(body)]
    urls = [f"{server.url}{path}.{extension}" for path in paths for extension in ("rss", "atom")]
    urls += [f"{server.url}/feed.rss?limit=1&page=2", f"{server.url}/feed.atom?limit=1&page=2"]
    return urls


def test_w3c_validator_accepts_every_feed(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path
) -> None:
    validator()
    server = start_gunicorn(seeds_dir)
    urls = feed_urls(server)
    assert len(urls) == 2 * (1 + 2 + 2) + 2
    result = run_validator(urls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"validated {len(urls)} feeds, 0 with problems" in result.stdout


# --- seeds that are valid but unusual ---------------------------------------------------

IMAGE = {"url": "https://img.example.com/a.jpg?w=600&h=400", "width": 600, "height": 400}
RELATED = [
    {
        "title": "Other coverage & more",
        "webUrl": "https://other.example.com/story?id=1&ref=feed",
        "provider": {"name": "Other"},
    }
]
BASE_FIELDS: dict[str, Any] = {
    "publishedDateTime": "2021-03-04T05:06:07+01:00",
    "published": True,
    "excerpt": "An excerpt.",
    "provider": {"name": "Example News", "domain": "www.Example.com"},
    "images": [IMAGE],
    "related": RELATED,
}
# A Markdown body with every kind of markup, and what a sanitizer must remove.
MARKDOWN = """## A heading

Text with **bold**, *emphasis*, `code`, ~~strike~~ and a [relative link](../other.html?a=1&b=2).

![A chart](img/chart.png "Chart & title")

> A quote with <abbr title="HyperText">HTML</abbr>, <b>b</b>, <i>i</i>, <u>u</u>, <ins>ins</ins>.

1. one
2. two

```
code <block> & ]]> end
```

| a | b |
|---|---|
| 1 | 2 |

<script>alert(1)</script><img src="x.png" onerror="alert(1)" alt="]]>">
[js](javascript:alert(1)) <iframe src="https://e.example"></iframe> <p style="color:red">styled</p>
"""
BODY = "body"  # a VARIANTS key that is the text after the front matter, not a field
# name: fields replacing BASE_FIELDS (None removes one); each article has its own topic.
VARIANTS: dict[str, dict[str, Any]] = {
    "unicode": {
        "title": "Ünïcödé — “quotes” 日本語 ✓",
        "excerpt": "Émoji 🚀 and naïve café text.",
    },
    "query-urls": {"title": "URLs with queries", "webUrl": "https://e.example.org/a?x=1&y=2"},
    "provider-name-only": {"title": "Name only", "provider": {"name": "Just A Name"}},
    "no-image-no-related": {"title": "Plain", "images": None, "related": None},
    "no-provider": {"title": "Nobody's", "provider": None},
    "bare": {"title": "Bare", "excerpt": None, "images": None, "related": None},
    "ampersand": {"title": "AT&T buys R&D lab"},
    "less-than": {"title": "A <odd> title & more"},
    "markdown-body": {"title": "With a body", BODY: MARKDOWN},
    "body-no-excerpt": {"title": "A body, no excerpt", "excerpt": None, BODY: "Just *text*."},
}
# An article every ten minutes: RSS says sy:updatePeriod hourly, frequency 6, ttl 10.
HOURLY = "W3C hourly"
# Feeds of new shapes: unions, selections, and a busy topic's freshness hints.
SHAPES = [
    "/topics/w3c-hourly.rss",
    "/topics/w3c-hourly.atom",
    "/topics/w3c-markdown-body+w3c-unicode.rss",
    "/topics/w3c-markdown-body+w3c-unicode.atom",
    "/providers/example.com+techcrunch.com.rss",
    "/feed.rss?topic=ai&topic=w3c-markdown-body&provider=example.com&provider=techcrunch.com",
    "/feed.atom?topic=ai&topic=w3c-markdown-body&provider=example.com&provider=techcrunch.com",
    # Asked in canonical order (query.KNOWN_PARAMETERS): a feed's self link is its canonical
    # URL, and the validator wants it to be the address it fetched.
    "/feed.rss?limit=3&page=2&exclude_topic=ai&exclude_provider=hothardware.com",
    "/feed.atom?limit=3&page=2&exclude_topic=ai&exclude_provider=hothardware.com",
]
# Variants the validator still finds fault with: none now.
KNOWN_PROBLEMS: dict[tuple[str, str], str] = {}


def _write_seed(path: Path, fields: dict[str, Any]) -> None:
    body = fields.pop(BODY, "")
    fields = {key: value for key, value in fields.items() if value is not None}
    text = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    path.write_text(f"---\n{text}---\n{body}", "utf-8")


def _write_variants(directory: Path) -> None:
    for second, (name, changes) in enumerate(VARIANTS.items()):
        # Each its own time: the validator warns of two Atom entries updated at once.
        moment = f"2021-03-04T05:06:{second:02d}+01:00"
        fields = {**BASE_FIELDS, "webUrl": f"https://example.com/{name}"}
        fields.update({"publishedDateTime": moment, **changes})
        fields["topics"] = [f"W3C {name}"]
        _write_seed(directory / f"{name}.md", fields)
    for number in range(5):
        fields = {
            **BASE_FIELDS,
            "title": f"Busy {number}",
            "webUrl": f"https://example.com/busy/{number}",
            "publishedDateTime": f"2021-03-04T05:{10 * number:02d}:00Z",
            "topics": [HOURLY],
        }
        _write_seed(directory / f"busy{number}.md", fields)


@pytest.fixture(scope="module")
def variant_problems(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[str]]]:
    """What the validator says of each variant's topic feed, by URL path."""
    validator()
    root = tmp_path_factory.mktemp("w3c")
    seeds = root / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    _write_variants(seeds)
    server = gunicorn_launcher(seeds, root / "logs")
    try:
        paths = [f"/topics/w3c-{name}.{ext}" for name in VARIANTS for ext in ("rss", "atom")]
        paths += SHAPES
        hourly = ElementTree.fromstring(server.fetch("/topics/w3c-hourly.rss")[2])
        assert hourly.findtext("channel/ttl") == "10"  # the shape this test is for
        for path in paths:
            assert server.fetch(path)[0] == 200, path
        result = run_validator([server.url + path for path in paths])
        assert f"validated {len(paths)} feeds" in result.stdout, result.stdout + result.stderr
        problems: dict[str, list[str]] = defaultdict(list)
        for line in result.stdout.splitlines():
            url, _, problem = line.partition(": ")
            if url.startswith(server.url):
                problems[url.removeprefix(server.url)].append(problem)
        yield problems
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        pytest.param(
            name,
            extension,
            marks=[pytest.mark.xfail(reason=KNOWN_PROBLEMS[name, extension], strict=True)]
            if (name, extension) in KNOWN_PROBLEMS
            else [],
        )
        for name in VARIANTS
        for extension in ("rss", "atom")
    ],
)
def test_w3c_validator_accepts_unusual_articles(
    variant_problems: dict[str, list[str]], name: str, extension: str
) -> None:
    assert variant_problems.get(f"/topics/w3c-{name}.{extension}", []) == []


@pytest.mark.parametrize("path", SHAPES)
def test_w3c_validator_accepts_new_feed_shapes(
    variant_problems: dict[str, list[str]], path: str
) -> None:
    assert variant_problems.get(path, []) == []


def test_every_tag_a_body_may_keep_is_one_the_validator_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkout, _ = validator()
    for folder in (checkout, os.path.join(checkout, "src")):
        monkeypatch.syspath_prepend(folder)
    validators = importlib.import_module("feedvalidator.validators")
    accepted = set(validators.HTMLValidator.acceptable_elements)
    assert set(ALLOWED_TAGS) - accepted == set()

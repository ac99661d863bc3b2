"""The Markdown body after the front matter: extracted, rendered, sanitized, and served as
every format's full content and on the pages, while the excerpt stays the summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import feedparser
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedserver.load.bodies import body_html
from feedserver.load.front_matter import markdown_body
from feedserver.load.records import SeedFile
from feedserver.load.seed_file import parse_seed_file

BASE = "http://feeds.test"
ARTICLE = "https://news.example.com/2024/03/story.html"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
BODY = """Intro with **bold** and a [relative link](../other.html).

![A chart](img/chart.png "The chart")

<script>alert("x")</script>
<img src="x.png" onerror="alert(1)">
[click](javascript:alert(1))

| a | b |
|---|---|
| 1 | 2 |
"""


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    return client.get(BASE + path, **kwargs)


# --- the sanitizer --------------------------------------------------------------------


def test_markdown_becomes_html() -> None:
    html = body_html("# Head\n\nSome *text*, `code` and ~~old~~.\n\n- one\n- two\n", ARTICLE)
    assert html == (
        "<h1>Head</h1>\n<p>Some <em>text</em>, <code>code</code> and <del>old</del>.</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"
    )


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        "<style>body{display:none}</style>",
        "<iframe src='https://evil.example'></iframe>",
        "<object data='x.swf'></object>",
    ],
)
def test_scripts_and_embeds_are_removed_with_their_content(markdown: str) -> None:
    html = body_html(f"Before {markdown} after", ARTICLE)
    assert html == "<p>Before  after</p>"


@pytest.mark.parametrize(
    "markdown",
    [
        '<img src="a.png" onerror="alert(1)">',
        '<a href="https://e.example" onclick="alert(1)" onmouseover="x()">x</a>',
        '<p onload="alert(1)" style="background:url(javascript:x)">x</p>',
        "<svg onload=alert(1)><circle r=1 /></svg>",
    ],
)
def test_event_handlers_and_styles_are_removed(markdown: str) -> None:
    html = body_html(markdown, ARTICLE)
    assert "on" not in html.replace("noopener", "").replace("https://e.example", "")
    assert "style" not in html and "javascript" not in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">click</a>',
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<a href="jav&#x09;ascript:alert(1)">click</a>',
        '<a href=" javascript:alert(1)">click</a>',
        '<a href="vbscript:msgbox(1)">click</a>',
        '<a href="data:text/html,<script>alert(1)</script>">click</a>',
        '<img src="javascript:alert(1)">',
    ],
)
def test_script_urls_are_removed(markdown: str) -> None:
    html = body_html(markdown, ARTICLE)
    assert _attribute_values(html), html  # something is left: a link without href, or text
    for value in _attribute_values(html):
        assert not value.lower().startswith(("javascript", "vbscript", "data:")), value
    assert "click" in html or "<img" in html


def _attribute_values(html: str) -> list[str]:
    """Every attribute value of an HTML fragment, and its text (as one more value)."""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    values = [value for element in root.iter() for value in element.attrib.values()]
    return [*values, root.text_content()]


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[x](../other.html)", 'href="https://news.example.com/2024/other.html"'),
        ("[x](other.html)", 'href="https://news.example.com/2024/03/other.html"'),
        ("[x](/about)", 'href="https://news.example.com/about"'),
        ("[x](#part-2)", 'href="https://news.example.com/2024/03/story.html#part-2"'),
        ("[x](//cdn.example.com/a)", 'href="https://cdn.example.com/a"'),
        ("![x](img/a.png)", 'src="https://news.example.com/2024/03/img/a.png"'),
        ('<img src="/i.jpg" alt="i">', 'src="https://news.example.com/i.jpg"'),
        ("[x](https://other.example/a)", 'href="https://other.example/a"'),
        ("[x](mailto:desk@news.example.com)", 'href="mailto:desk@news.example.com"'),
    ],
)
def test_relative_links_and_images_resolve_against_the_article(
    markdown: str, expected: str
) -> None:
    assert expected in body_html(markdown, ARTICLE)


def test_an_article_url_without_a_usable_base_drops_relative_urls_only() -> None:
    html = body_html("[a](y.html) [b](https://other.example/) ![c](c.png)", "https://[::1]:99999/x")
    assert html == (
        '<p><a rel="noopener noreferrer">a</a> '
        '<a href="https://other.example/" rel="noopener noreferrer">b</a> <img alt="c"></p>'
    )


def test_links_cannot_reach_back_to_the_opener() -> None:
    assert 'rel="noopener noreferrer"' in body_html("[x](https://other.example/)", ARTICLE)


def test_cdata_end_and_xml_unsafe_characters_cannot_break_a_feed() -> None:
    html = body_html('<img alt="]]>" src="a.png"> ]]> \x00\x1b\ufffe', ARTICLE)
    assert "]]>" not in html
    assert not any(ch in html for ch in "\x00\x1b\ufffe")


def test_a_blank_body_is_no_body() -> None:
    assert body_html("  \n\n\t\n", ARTICLE) == ""


# --- extraction from the file ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("---\ntitle: T\n---\n# Body\n\ntext\n", "# Body\n\ntext\n"),
        ("---\ntitle: T\n---  \r\nBody\r\n", "Body\r\n"),
        ("---\ntitle: T\n---\n", ""),
        ("---\ntitle: T\n---", ""),
        ("---\ntitle: T\n---\n\n   \n", ""),
        ("title: T\nwebUrl: https://e.example/\n", ""),  # a whole YAML mapping
        ("---\ntitle: T\n---\nOne\n---\nTwo\n", "One\n---\nTwo\n"),  # later rules are body
    ],
)
def test_markdown_body_is_what_follows_the_front_matter(text: str, body: str) -> None:
    assert markdown_body(text) == body


def _seed(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "a.md"
    path.write_text(text, "utf-8")
    info = path.stat()
    return parse_seed_file(tmp_path, SeedFile("a.md", info.st_size, info.st_mtime_ns, 1), 1 << 20)


FRONT = (
    "---\ntitle: T\nwebUrl: https://news.example.com/a/b\n"
    "publishedDateTime: 2024-01-01T00:00:00Z\npublished: true\nexcerpt: The excerpt.\n---\n"
)


def test_a_seed_file_keeps_its_body_as_sanitized_html(tmp_path: Path) -> None:
    parsed = _seed(tmp_path, FRONT + "Hello [there](c.html) <script>x</script>\n")
    assert parsed.error is None and parsed.warnings == ()
    assert parsed.article.body_html == (
        '<p>Hello <a href="https://news.example.com/a/c.html" rel="noopener noreferrer">'
        "there</a> </p>"
    )
    assert parsed.article.excerpt == "The excerpt."


def test_a_body_loses_bidirectional_controls_like_every_served_string(tmp_path: Path) -> None:
    parsed = _seed(tmp_path, FRONT + "Price \u202e05$ \u2066x\u2069\n")
    assert parsed.article.body_html == "<p>Price 05$ x</p>"


def test_a_seed_file_without_a_body_has_none(tmp_path: Path) -> None:
    assert _seed(tmp_path, FRONT).article.body_html == ""
    assert _seed(tmp_path, FRONT + "\n\n").article.body_html == ""


def test_a_body_past_max_file_bytes_refuses_the_file(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_file: Callable[..., Path]
) -> None:
    write_file("big.md", FRONT + "word " * 2000)
    write_file("small.md", FRONT.replace("/a/b", "/a/small") + "word\n")
    client = make_app(tmp_seeds, base_url=BASE, max_file_bytes=4096).test_client()
    health = json.loads(get(client, "/healthz").data)
    assert [(e["file"], e["skipped"]) for e in health["errors"]] == [("big.md", True)]
    assert "over the limit" in health["errors"][0]["error"]
    assert json.loads(get(client, "/feed.json").data)["items"][0]["url"].endswith("/a/small")


# --- served ---------------------------------------------------------------------------


@pytest.fixture
def body_client(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_file: Callable[..., Path]
) -> FlaskClient:
    more = "topics: [Bodies]\nprovider: {name: N, domain: n.example}\n"
    front = FRONT.replace("https://news.example.com/a/b", ARTICLE).replace(
        "published: true\n", f"published: true\n{more}"
    )
    write_file("body.md", front + BODY)
    plain = front.replace("story.html", "plain.html").replace("2024-01-01", "2023-01-01")
    write_file("plain.md", plain)
    return make_app(tmp_seeds, base_url=BASE).test_client()


def _check_body(html: str) -> None:
    assert "<strong>bold</strong>" in html
    assert 'href="https://news.example.com/2024/other.html"' in html
    assert 'src="https://news.example.com/2024/03/img/chart.png"' in html
    assert "<table>" in html
    for bad in ("<script", "onerror", 'alert("x")', 'href="javascript'):
        assert bad not in html
    assert all("javascript" not in value for value in _attribute_values(html)[:-1])
    assert "The excerpt." not in html  # the summary, not repeated in the content
    assert "Read the full article at N</a>" in html


def test_atom_content_is_the_body(body_client: FlaskClient) -> None:
    root = ElementTree.fromstring(get(body_client, "/topics/bodies.atom").data)
    entry = root.find("atom:entry", NS)
    assert entry is not None
    content = entry.find("atom:content", NS)
    assert content is not None and content.get("type") == "html"
    _check_body(content.text or "")
    assert entry.findtext("atom:summary", None, NS) == "The excerpt."
    parsed = feedparser.parse(get(body_client, "/topics/bodies.atom").data)
    assert "<strong>bold</strong>" in parsed.entries[0].content[0].value
    assert parsed.entries[0].summary == "The excerpt."


def test_rss_content_encoded_is_the_body(body_client: FlaskClient) -> None:
    item = ElementTree.fromstring(get(body_client, "/topics/bodies.rss").data).find("channel/item")
    assert item is not None
    _check_body(item.findtext("content:encoded", "", NS))
    assert item.findtext("description") == "The excerpt."


def test_json_content_html_is_the_body(body_client: FlaskClient) -> None:
    item = json.loads(get(body_client, "/topics/bodies.json").data)["items"][0]
    _check_body(item["content_html"])
    assert item["summary"] == "The excerpt."


def test_an_article_without_a_body_keeps_the_excerpt_as_content(
    body_client: FlaskClient,
) -> None:
    items = json.loads(get(body_client, "/topics/bodies.json").data)["items"]
    plain = items[1]
    assert plain["url"].endswith("plain.html")
    assert plain["content_html"] == (
        '<p>The excerpt.</p><p><a href="https://news.example.com/2024/03/plain.html">'
        "Read the full article at N</a></p>"
    )


def test_the_topic_page_shows_the_body(body_client: FlaskClient) -> None:
    response = get(body_client, "/topics/bodies")
    page = lxml.html.fromstring(response.data)
    articles = page.xpath("//article")
    assert len(articles) == 2
    full_text = articles[0].xpath(".//details")
    assert len(full_text) == 1
    assert full_text[0].xpath("./summary/text()") == ["Full text"]
    assert full_text[0].xpath(".//strong/text()") == ["bold"]
    assert full_text[0].xpath(".//img/@src") == [
        "https://news.example.com/2024/03/img/chart.png",
        "https://news.example.com/2024/03/x.png",
    ]
    assert not page.xpath("//script") and b"onerror" not in response.data
    assert articles[1].xpath(".//details") == []


def test_editing_only_the_body_changes_the_feed_on_the_next_reload(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_file: Callable[..., Path]
) -> None:
    seed = write_file("a.md", FRONT + "First *version*.\n", mtime=1_600_000_000)
    app = make_app(tmp_seeds, base_url=BASE)
    client = app.test_client()
    before = get(client, "/feed.json")
    assert "<em>version</em>" in json.loads(before.data)["items"][0]["content_html"]
    write_file("a.md", FRONT + "Second version, <b>bold</b>.\n", mtime=1_600_000_100)
    assert seed.read_text("utf-8").endswith("<b>bold</b>.\n")
    app.extensions["feedserver.store"].reload()
    after = get(client, "/feed.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    content = json.loads(after.data)["items"][0]["content_html"]
    assert "<b>bold</b>" in content and "First" not in content

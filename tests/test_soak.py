"""The soak script (benchmarks/soak.py): a short run against a real gunicorn, and its checks
and its editor on their own, so that a soak that passes means something."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.generate import generate
from benchmarks.soak import (
    BROKEN_YAML,
    Response,
    SeedEditor,
    Target,
    TargetPool,
    body_problem,
    check_response,
    decoded_body,
    query_for,
    run_soak,
)

SOAK_SECONDS = 8
SOAK_CLIENTS = 4


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_short_soak_has_no_failures_and_leaves_the_seeds_as_they_were(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    generate(seeds, 200, topics=40, providers=20)
    before = snapshot(seeds)

    result = run_soak(SOAK_SECONDS, SOAK_CLIENTS, seeds=seeds, workdir=tmp_path)

    assert result.ok, result.summary()
    assert result.failure_count == 0 and not result.failures
    assert result.requests > 100, result.summary()
    assert result.statuses[200] > 100, result.summary()
    assert not [status for status in result.statuses if status >= 500]
    assert set(result.statuses) <= {200, 304, 404}, result.summary()
    # The editor went round its whole loop more than once.
    assert all(result.edits.get(name, 0) >= 2 for name in SeedEditor.OPERATIONS), result.edits
    assert result.urls > 100  # every topic and provider, in every format
    assert snapshot(seeds) == before  # every edit undone, every added file removed
    assert "requests:" in result.summary()


# --- the checks the soak relies on --------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>http://x.test/</link>
<description>d</description><item><title>a</title><link>http://x.test/a</link></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>http://x.test/</id><title>t</title>
<updated>2020-01-01T00:00:00Z</updated></feed>"""
JSON_FEED = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": []}'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/rss+xml", RSS),
        ("application/atom+xml", ATOM),
        ("application/feed+json", JSON_FEED),
        ("application/json", b'[{"slug": "a"}]'),
        ("text/html", b"<!doctype html><html><body></body></html>\n"),
        ("text/x-opml", b'<?xml version="1.0"?><opml version="2.0"><body/></opml>'),
        ("text/plain", b"404 Not Found: no such topic\n"),
    ],
)
def test_bodies_that_parse_pass(content_type: str, body: bytes) -> None:
    assert body_problem(content_type, body) is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/rss+xml", RSS[:-20]),  # cut short
        ("application/rss+xml", ATOM),  # Atom that claims to be RSS
        ("application/atom+xml", RSS),
        ("application/atom+xml", b"<feed xmlns='http://www.w3.org/2005/Atom'><title>&bad;"),
        ("application/feed+json", b'{"title": "no version", "items": []}'),
        ("application/feed+json", b'{"version": "https://jsonfeed.org/version/1.1"}'),
        ("application/feed+json", JSON_FEED[:-1]),
        ("application/json", b'{"a": '),
        ("text/html", b"<html><body>cut short"),
        ("text/x-opml", b"<opml><body>"),
        ("text/x-opml", b"<rss/>"),
        ("text/plain", b"\xff\xfe"),
        ("application/octet-stream", b"anything"),
    ],
)
def test_bodies_that_do_not_parse_fail(content_type: str, body: bytes) -> None:
    assert body_problem(content_type, body)


SITE = Target("/feed.rss", "application/rss+xml", collection=False, baseline=True)
TOPIC = Target("/topics/ai.rss", "application/rss+xml", collection=True, baseline=True)
PLAIN = {"content-type": "text/plain; charset=utf-8"}


@pytest.mark.parametrize(
    ("target", "sent", "status", "headers", "body", "acceptable"),
    [
        (SITE, {}, 200, {"content-type": "application/rss+xml; charset=utf-8"}, RSS, True),
        (SITE, {}, 200, {"content-type": "application/atom+xml"}, ATOM, False),
        (SITE, {}, 500, PLAIN, b"500 Internal Server Error\n", False),
        (SITE, {}, 503, PLAIN, b"", False),
        (SITE, {}, 304, {}, b"", False),  # not asked for
        (SITE, {"If-None-Match": '"x"'}, 304, {}, b"", True),
        (SITE, {"If-None-Match": '"x"'}, 304, {}, b"body", False),
        (SITE, {}, 404, PLAIN, b"404 Not Found\n", False),  # the all-articles feed
        (TOPIC, {}, 404, PLAIN, b"404 Not Found: no such topic\n", True),
        (TOPIC, {}, 400, PLAIN, b"400 Bad Request\n", False),
    ],
)
def test_check_response(
    target: Target,
    sent: dict[str, str],
    status: int,
    headers: dict[str, str],
    body: bytes,
    acceptable: bool,
) -> None:
    response = Response(status, headers, body)
    assert (check_response(target, target.path, sent, response, body) is None) is acceptable


def test_gzip_is_undone_only_when_asked_for() -> None:
    packed = Response(200, {"content-encoding": "gzip"}, gzip.compress(RSS))
    assert decoded_body(packed, {"Accept-Encoding": "gzip"}) == (RSS, None)
    assert decoded_body(packed, {})[1]  # sent to a client that did not ask
    broken = Response(200, {"content-encoding": "gzip"}, b"not gzip")
    assert decoded_body(broken, {"Accept-Encoding": "gzip"})[1]
    assert decoded_body(Response(200, {}, RSS), {}) == (RSS, None)


def test_pool_learns_topics_from_listings_and_opml() -> None:
    pool = TargetPool()
    pool.add(SITE)
    listing = (
        b'[{"slug": "ai", "count": 7, "url": "http://h.test/topics/ai", "feeds": '
        b'{"rss": "http://h.test/topics/ai.rss", "atom": "http://h.test/topics/ai.atom", '
        b'"json": "http://h.test/topics/ai.json"}}]'
    )
    pool.learn("/topics.json", "application/json", listing)
    opml = (
        b'<opml version="2.0"><body><outline text="Providers"><outline type="rss" text="E" '
        b'xmlUrl="http://h.test/providers/e.com.rss" htmlUrl="http://h.test/providers/e.com"/>'
        b"</outline></body></opml>"
    )
    pool.learn("/feeds.opml", "text/x-opml", opml)
    assert len(pool) == 1 + 4 + 2
    rng = random.Random(3)
    chosen = {pool.choose(rng) for _ in range(200)}
    by_path = {target.path: target for target in chosen}
    assert by_path["/topics/ai.json"].content_type == "application/feed+json"
    assert by_path["/providers/e.com"].content_type == "text/html"
    assert by_path["/topics/ai"].collection and not by_path["/topics/ai"].baseline
    assert by_path["/topics/ai.rss"].articles == 7


def test_queries_go_to_feeds_only_and_ask_page_2_only_when_it_exists() -> None:
    rng = random.Random(5)
    page = Target("/topics/ai", "text/html", True, True, 50)
    assert {query_for(page, rng) for _ in range(100)} == {""}
    small = Target("/topics/ai.rss", "application/rss+xml", True, True, 5)
    queries = {query_for(small, rng) for _ in range(500)}
    assert "" in queries and len(queries) > 5
    assert not [q for q in queries if "page=" in q]
    big = Target("/topics/ai.rss", "application/rss+xml", True, True, 6)
    assert "?page=2&limit=5" in {query_for(big, rng) for _ in range(500)}


# --- the editor -----------------------------------------------------------------------------


def test_editor_operations_do_what_they_say(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    path = write_seed("only.txt", title="The title")
    original = path.read_text()
    editor = SeedEditor(tmp_seeds, random.Random(1))

    editor.step("edit_title")
    assert "The title" not in path.read_text()
    assert 'title: "Edited by the soak editor 0"' in path.read_text()
    editor.step("unpublish")
    assert "published: false" in path.read_text()
    assert "published: true" not in path.read_text()
    editor.step("break_yaml")
    assert path.read_text() == BROKEN_YAML
    editor.step("delete")
    assert not path.exists()
    editor.step("add")
    added = list((tmp_seeds / "soak-added").iterdir())
    assert len(added) == 1 and "Soak article 0" in added[0].read_text()
    editor.step("restore")
    assert path.read_text() == original
    assert not list((tmp_seeds / "soak-added").iterdir())
    assert dict(editor.counts) == dict.fromkeys(SeedEditor.OPERATIONS, 1)


def test_editor_finish_restores_everything(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    for n in range(5):
        write_seed(f"sub/s{n}.txt", title=f"Title {n}")
    before = snapshot(tmp_seeds)
    editor = SeedEditor(tmp_seeds, random.Random(2))
    for _ in range(40):
        editor.step(editor.rng.choice(SeedEditor.OPERATIONS[:-1]))
    assert snapshot(tmp_seeds) != before
    editor.finish()
    assert snapshot(tmp_seeds) == before
    assert not (tmp_seeds / "soak-added").exists()

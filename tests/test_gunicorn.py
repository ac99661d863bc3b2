"""A real gunicorn with two workers serving wsgi:app over a copy of the bundled seeds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest

from .conftest import GunicornServer

BUNDLED_SEEDS = Path(__file__).resolve().parent.parent / "seeds"
HOTHARDWARE = "https://hothardware.com/news/openai-supercomputer-by-microsoft"
TECHCRUNCH = (
    "https://techcrunch.com/2020/05/19/"
    "microsoft-says-it-teamed-up-with-openai-to-build-a-massive-ai-supercomputer-in-azure/"
)


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """One gunicorn for this module's tests, over a copy of the bundled seeds."""
    seeds = tmp_path_factory.mktemp("gunicorn") / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    started = gunicorn_launcher(seeds, seeds.parent / "logs")
    yield started
    started.stop()


def test_start_gunicorn_fixture_with_settings(
    start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path
) -> None:
    started = start_gunicorn(
        seeds_dir, "--preload", env={"FEEDSERVER_SITE_TITLE": "Preloaded"}, workers=1
    )
    status, _, body = started.fetch("/feed.rss")
    assert status == 200
    assert feedparser.parse(body).feed.title == "Preloaded"


@pytest.mark.parametrize(
    ("path", "content_type", "version"),
    [
        ("/feed.rss", "application/rss+xml; charset=utf-8", "rss20"),
        ("/topics/ai.atom", "application/atom+xml; charset=utf-8", "atom10"),
        ("/topics/ai.rss", "application/rss+xml; charset=utf-8", "rss20"),
        ("/feed.atom", "application/atom+xml; charset=utf-8", "atom10"),
    ],
)
def test_gunicorn_serves_the_published_articles(
    server: GunicornServer, path: str, content_type: str, version: str
) -> None:
    status, headers, body = server.fetch(path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == version
    assert [entry.link for entry in parsed.entries] == [HOTHARDWARE, TECHCRUNCH]
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [server.url + path]


def test_gunicorn_health_and_404(server: GunicornServer) -> None:
    status, _, body = server.fetch("/healthz")
    assert status == 200
    health = json.loads(body)
    assert (health["status"], health["articles"], health["errors"]) == ("ok", 2, [])
    status, _, body = server.fetch("/topics/azure.rss")
    assert status == 404
    assert b"Traceback" not in body
    status, _, body = server.fetch("/feed.rss?limit=0")
    assert status == 400
    assert b"limit" in body


def test_gunicorn_workers_give_identical_bodies(server: GunicornServer) -> None:
    bodies = {server.fetch("/topics/ai.atom")[2] for _ in range(6)}
    assert len(bodies) == 1

"""Entries rendered ahead of a build's feeds (prerender.py, render.prerender): one batch for
all the feeds gives each feed the bytes it renders alone, without a memo, as the server
does; an entry whose own text holds the marker the batch is split on is left to each feed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from benchmarks.generate import generate
from feedserver import export, prerender
from feedserver.catalog import Catalog
from feedserver.export import build_site
from feedserver.fragments import FragmentMemo
from feedserver.freshness import Freshness
from feedserver.models import Article
from feedserver.render import FeedDocument, render_atom, render_rss
from feedserver.render import prerender as render_ahead_of
from feedserver.urls import Urls

from .conftest import TEST_BASE_URL
from .test_export import files_under, url_path

URLS = Urls(TEST_BASE_URL)


def _document(catalog: Catalog, entries: list[Article], memo: FragmentMemo | None) -> FeedDocument:
    return FeedDocument(
        title="A feed",
        description="Its description",
        html_url=URLS.home(),
        self_url=URLS.everything("rss"),
        feed_id=URLS.everything("rss"),
        language="en",
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        entries=tuple(entries),
        urls=URLS,
        freshness=Freshness(900),
        publisher="Site",
        names=catalog.names,
        memo=memo,
    )


@pytest.fixture
def catalog(app: Flask) -> Catalog:
    found: Catalog = app.extensions["feedserver.store"].catalog
    return found


@pytest.mark.parametrize(
    "marker",
    ["", "<p>a</p>\n    </item>\n<p>b</p>", "<p>a</p>\n  </entry>\n<p>b</p>"],
    ids=["plain", "rss marker", "atom marker"],
)
def test_entries_rendered_in_one_batch_are_the_bytes_of_each_feed_alone(
    catalog: Catalog, marker: str
) -> None:
    articles = list(catalog.everything.articles)
    if marker:  # an entry whose own text holds where a batch is split
        articles[1] = replace(articles[1], body_html=marker)
    memo = FragmentMemo()
    render_ahead_of(articles, URLS, catalog.names, "Site", memo)
    for entries in (articles, articles[:2], articles[1:], articles[2:], articles[::-1]):
        for render in (render_rss, render_atom):
            alone = render(_document(catalog, entries, None))
            assert render(_document(catalog, entries, memo)) == alone
    if not marker:  # the batch was used, not rendered again by each feed
        kept = memo.made
        render_rss(_document(catalog, articles, memo))
        assert memo.made == kept


@pytest.mark.parametrize("workers", [1, 2])
def test_a_build_rendering_entries_ahead_in_two_processes_is_the_server(
    tmp_path: Path,
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(prerender, "PARALLEL_ENTRIES", 1)  # the fork path on a small site
    monkeypatch.setattr(export, "PARALLEL_FILES", 1)
    seeds = tmp_path / "seeds"
    generate(seeds, 40, seed=5, topics=5, providers=3)
    site = tmp_path / "site"
    report = build_site(make_app(seeds, base_url=TEST_BASE_URL), site, workers=workers)
    assert not report.failed
    server = make_app(seeds, base_url=TEST_BASE_URL).test_client()
    for name, body in files_under(site).items():
        if name != export.REDIRECTS_FILE:
            path, headers = url_path(name)
            assert server.get(path, headers=headers).get_data() == body, name


def test_shells_outlive_a_build_that_rendered_nothing(app: Flask, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(app, site)
    build_site(app, site)  # nothing changed: nothing rendered
    memo = app.extensions["feedserver.fragments"]
    (site / "feed.rss").unlink()
    made: list[str] = []
    shell = memo.shell

    def counted(feed: str, key: object, make: Callable[[], bytes]) -> bytes:
        def noted() -> bytes:
            made.append(feed)
            return make()

        found: bytes = shell(feed, key, noted)
        return found

    memo.shell = counted
    assert build_site(app, site).written == 1
    assert made == []

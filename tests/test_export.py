"""`feedserver build OUTDIR`: the static export, byte-identical to the server, incremental
and atomic."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from feedserver import cli
from feedserver.export import BROWSER, MANIFEST, REDIRECTS_FILE, build_site

from .conftest import TEST_BASE_URL, GunicornServer

EXPECTED = {
    "index.html",
    "feed.rss",
    "feed.atom",
    "feed.json",
    "topics.json",
    "providers.json",
    "feeds.opml",
    "static/style.css",
    "static/feed-icon.png",
    "static/favicon.svg",
    "favicon.ico",
    "topics/index.html",
    "providers/index.html",
    "rss.xml",
    "feed.xml",
    "index.xml",
    "atom.xml",
    REDIRECTS_FILE,
    "feed.rss.html",
    "feed.atom.html",
    "feed.json.html",
    *(
        f"{kind}/{key}{suffix}"
        for kind, keys in (
            ("topics", ("ai", "microsoft-ai")),
            ("providers", ("hothardware.com", "techcrunch.com")),
        )
        for key in keys
        for suffix in (
            ".rss",
            ".atom",
            ".json",
            "/index.html",
            ".rss.html",
            ".atom.html",
            ".json.html",
        )
    ),
}
# Files named for other software's feed URLs hold the canonical feed's bytes.
ALIAS_FILES = {"rss.xml": "/feed.rss", "feed.xml": "/feed.rss", "index.xml": "/feed.rss"}
ALIAS_FILES["atom.xml"] = "/feed.atom"


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name != MANIFEST
    }


def url_path(name: str) -> tuple[str, dict[str, str]]:
    """The request whose response a file of the export holds."""
    if name == "index.html":
        return "/", {}
    if name in ALIAS_FILES:
        return ALIAS_FILES[name], {}
    if name.endswith((".rss.html", ".atom.html", ".json.html")):
        return "/" + name.removesuffix(".html"), BROWSER  # a feed's preview for browsers
    return "/" + name.removesuffix("/index.html"), {}


@pytest.fixture
def app(make_app: Callable[..., Flask], seeds_dir: Path) -> Flask:
    return make_app(seeds_dir, base_url=TEST_BASE_URL)


def test_build_writes_every_route_byte_identical_to_the_server(
    app: Flask, tmp_path: Path, make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    out = tmp_path / "site"
    report = build_site(app, out)
    written = files_under(out)
    assert set(written) == EXPECTED
    assert (report.files, report.written, report.removed) == (len(EXPECTED), len(EXPECTED), 0)
    server = make_app(seeds_dir, base_url=TEST_BASE_URL).test_client()  # a separate app
    for name, body in written.items():
        if name == REDIRECTS_FILE:
            continue
        path, headers = url_path(name)
        assert server.get(path, headers=headers).get_data() == body, name
    # What a Netlify or Cloudflare Pages site redirects: the names the server redirects.
    for line in written[REDIRECTS_FILE].decode().splitlines():
        source, target, status = line.split()
        response = server.get(source)
        assert (response.status_code, status) == (301, "301")
        assert response.headers["Location"] == f"{TEST_BASE_URL}{target}"
    assert "/rss.xml /feed.rss 301" in written[REDIRECTS_FILE].decode()


def test_build_matches_a_running_gunicorn(
    tmp_path: Path, seeds_dir: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    server = start_gunicorn(seeds_dir, env={"FEEDSERVER_BASE_URL": TEST_BASE_URL})
    out = tmp_path / "site"
    assert (
        cli.main(["build", str(out), "--seeds", str(seeds_dir), "--base-url", TEST_BASE_URL]) == 0
    )
    for name, body in files_under(out).items():
        if name == REDIRECTS_FILE:
            continue
        path, headers = url_path(name)
        with urllib.request.urlopen(
            urllib.request.Request(server.url + path, headers=headers), timeout=10
        ) as response:
            assert (response.status, response.read()) == (200, body), name


def test_second_build_rewrites_only_changed_files_and_removes_stale_ones(
    app: Flask, tmp_path: Path, seeds_dir: Path
) -> None:
    out = tmp_path / "site"
    build_site(app, out)
    (out / "notes.txt").write_text("not ours")  # a file the build did not make stays
    before = files_under(out)
    inodes = {name: (out / name).stat().st_ino for name in before}
    again = build_site(app, out)
    assert (again.written, again.unchanged, again.removed) == (0, len(EXPECTED), 0)

    # TechCrunch's only article is unpublished: its files go, and the feeds it was in change.
    techcrunch = next(seeds_dir.glob("004_*"))
    techcrunch.write_text(techcrunch.read_text().replace("published: true", "published: false"))
    stat = techcrunch.stat()
    os.utime(techcrunch, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    app.extensions["feedserver.store"].reload()
    report = build_site(app, out)
    after = files_under(out)
    gone = {name for name in before if "techcrunch.com" in name}
    assert len(gone) == 7 and not gone & set(after)
    assert report.removed == 7
    assert "notes.txt" in after
    changed = {name for name in after if name in before and after[name] != before[name]}
    assert report.written == len(changed) > 0
    for name in after.keys() - {"notes.txt"}:
        rewritten = (out / name).stat().st_ino != inodes[name]
        assert rewritten == (name in changed), name  # renamed into place, or left alone
    assert not list(out.rglob(".tmp-*"))
    assert not (out / "providers" / "techcrunch.com").exists()


def test_build_needs_a_base_url(tmp_path: Path, seeds_dir: Path) -> None:
    assert cli.main(["build", str(tmp_path / "site"), "--seeds", str(seeds_dir)]) == 2
    assert not (tmp_path / "site").exists()

"""Static export: every route the server answers without a query, written as files at the
same paths, so that a CDN, an object store or any web server can carry the traffic.

The bytes come from the app itself (through Flask's test client), so a file is identical to
what the server returns for the same catalog and base_url. A build is incremental and
atomic: a file is rewritten only when its bytes change, each by a temporary file renamed
into place, and files of topics or providers that no longer exist are removed."""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from .catalog import Catalog
from .redirects import FEED_ALIASES
from .store import CatalogStore
from .urls import FEED_EXTENSIONS, feed_path, page_path

logger = logging.getLogger(__name__)

# Lists the files a build wrote, so the next build removes only its own stale files.
MANIFEST = ".feedserver-manifest"
LISTINGS = ("/topics.json", "/providers.json", "/feeds.opml")
PAGES = ("/topics", "/providers")
STATIC = ("/static/style.css", "/static/favicon.svg", "/favicon.ico", "/static/feed-icon.png")
# A feed's HTML preview (what a browser gets at the feed's URL) is written beside the feed
# as `<feed file>.html`, for a host that rewrites browser navigations to it (see README).
PREVIEW_SUFFIX = ".html"
BROWSER = {"Sec-Fetch-Dest": "document", "Accept": "text/html"}
# Netlify and Cloudflare Pages read redirects from this file at the top of the site.
REDIRECTS_FILE = "_redirects"


@dataclass(frozen=True, slots=True)
class Route:
    """One file of the export: the request whose response it holds, and its name."""

    path: str
    name: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What one build did."""

    files: int
    written: int
    unchanged: int
    removed: int


def routes(catalog: Catalog) -> Iterator[Route]:
    """Every path the server answers without a query string (/healthz aside), with the file
    it is written to: a page becomes a folder's index.html, a feed's preview `<feed>.html`,
    and the feed names other software uses (`rss.xml`, `atom.xml`, ...) copies of the feed."""
    for collection in (catalog.everything, *catalog.topics.values(), *catalog.providers.values()):
        page = page_path(collection)
        yield Route(page, _index_file(page))
        for extension in FEED_EXTENSIONS:
            path = feed_path(collection, extension)
            yield Route(path, path.lstrip("/"))
            yield Route(path, path.lstrip("/") + PREVIEW_SUFFIX, BROWSER)
    for page in PAGES:
        yield Route(page, _index_file(page))
    for path in (*LISTINGS, *STATIC):
        yield Route(path, path.lstrip("/"))
    for alias, target in FEED_ALIASES.items():
        if "." in alias:  # a file name a static host can serve as it is
            yield Route(target, alias.lstrip("/"))


def _index_file(page: str) -> str:
    return f"{page.strip('/')}/index.html".lstrip("/")


def redirects_file() -> bytes:
    """`_redirects` for Netlify and Cloudflare Pages: the feed names other software uses."""
    lines = [f"{alias} {target} 301" for alias, target in FEED_ALIASES.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _write_atomically(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.name)
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(body)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)  # readers see the old file or the new one, never half
    except BaseException:
        os.unlink(temporary)
        raise


def _read_manifest(outdir: Path) -> set[str]:
    try:
        return set((outdir / MANIFEST).read_text(encoding="utf-8").split("\n")) - {""}
    except FileNotFoundError:
        return set()


def _remove(outdir: Path, name: str) -> None:
    path = outdir / name
    path.unlink(missing_ok=True)
    for parent in path.parents:  # drop folders the build made that are now empty
        if parent == outdir or any(parent.iterdir()):
            break
        parent.rmdir()


def _fetch(client: FlaskClient, route: Route) -> bytes:
    response = client.get(route.path, headers=route.headers)
    if response.status_code != 200:
        raise RuntimeError(f"{route.path} answered {response.status_code} during the build")
    return response.get_data()


def build_site(app: Flask, outdir: Path) -> BuildReport:
    """Write every route of the app's current catalog under outdir; see the module's doc."""
    store: CatalogStore = app.extensions["feedserver.store"]
    client = app.test_client()
    outdir.mkdir(parents=True, exist_ok=True)
    written = unchanged = 0
    names = []
    # One body in memory at a time.
    made = ((route.name, _fetch(client, route)) for route in routes(store.catalog))
    for name, body in itertools.chain(made, [(REDIRECTS_FILE, redirects_file())]):
        names.append(name)
        target = outdir / name
        try:
            same = target.stat().st_size == len(body) and target.read_bytes() == body
        except OSError:
            same = False
        if same:
            unchanged += 1
        else:
            _write_atomically(target, body)
            written += 1
    stale = _read_manifest(outdir) - set(names)
    for name in sorted(stale):
        _remove(outdir, name)
    _write_atomically(outdir / MANIFEST, ("\n".join(sorted(names)) + "\n").encode("utf-8"))
    report = BuildReport(len(names), written, unchanged, len(stale))
    logger.info(
        "build: files=%d written=%d unchanged=%d removed=%d",
        report.files,
        report.written,
        report.unchanged,
        report.removed,
    )
    return report


def watch(app: Flask, outdir: Path, interval: float) -> None:
    """Rebuild whenever a reload changes the catalog, every interval, until interrupted."""
    store: CatalogStore = app.extensions["feedserver.store"]
    while True:
        time.sleep(interval)
        before = store.catalog
        store.reload()
        if store.catalog is not before:
            build_site(app, outdir)

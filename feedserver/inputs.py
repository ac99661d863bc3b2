"""What each exported file is built from, as a short digest: the settings and the code, and
the collection (or the whole catalog) its route shows. A rebuild renders again only the
files whose digest differs from the one the manifest keeps (export.py).

A collection's digest covers what any of its routes shows: its kind, key, name and change
time, each member's seed file as `stat` saw it (path, size, mtime, inode, ctime: what the
store itself trusts to know a file unchanged, so an unchanged file serves the same
article), in order, and the display names of the topics and providers its members name."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from .catalog import Catalog, Collection
from .models import Article
from .settings import Settings
from .store import CatalogStore

logger = logging.getLogger(__name__)

# The kinds of input a route is built from (export.Route.source): a collection's
# `kind:key`, or one of these.
CATALOG = "catalog"  # every collection's name, count and dates: listings, home, indexes
SITE = "site"  # the settings and the code alone: static files, _redirects

_PACKAGE = Path(__file__).resolve().parent


def _digest(parts: Iterable[str]) -> str:
    joined = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(joined, digest_size=12).hexdigest()


@cache
def code_digest() -> str:
    """The package's code, templates and static files: a new version rebuilds everything."""
    files = sorted(
        path
        for path in _PACKAGE.rglob("*")
        if path.is_file() and path.suffix in {".py", ".html", ".css", ".svg", ".png", ".ico"}
    )
    hashed = hashlib.blake2b(digest_size=12)
    for path in files:
        hashed.update(str(path.relative_to(_PACKAGE)).encode())
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def site_digest(settings: Settings) -> str:
    """The settings (base URL, titles, limits, ...) and the code."""
    return _digest((repr(settings), code_digest()))


class InputDigests:
    """The digests of one catalog's collections, each computed once."""

    def __init__(self, store: CatalogStore, catalog: Catalog) -> None:
        self.catalog = catalog
        # Each article by the seed file that serves it (the objects the catalog holds).
        self._files: dict[int, str] = {}
        for seed in store.seeds_served():
            if seed.article is not None:
                self._files[id(seed.article)] = "\1".join(map(str, seed.file))
        self._collections: dict[str, str] = {}
        self._articles: dict[int, str] = {}  # of the catalog's own (living) articles

    def _article(self, article: Article) -> str:
        """An article as its routes show it: its seed file, and the names it shows."""
        found = self._articles.get(id(article))
        if found is None:
            names = self.catalog.names
            source = self._files.get(id(article))
            shown = [source if source is not None else repr(article)]  # not from a file
            if article.provider is not None:
                shown.append(names.provider(article.provider))
            shown += (names.topic(topic) for topic in article.topics)
            found = self._articles[id(article)] = "\1".join(shown)
        return found

    def collection(self, collection: Collection) -> str:
        """What every route of this collection is built from."""
        source = f"{collection.kind}:{collection.key}"
        found = self._collections.get(source)
        if found is None:
            found = _digest(
                (
                    collection.kind,
                    collection.key,
                    collection.name,
                    collection.changed_at.isoformat(),
                    *map(self._article, collection.articles),
                )
            )
            self._collections[source] = found
        return found

    def whole(self) -> str:
        """What the catalog-wide routes are built from: every collection's digest."""
        found = self._collections.get(CATALOG)
        if found is None:
            catalog = self.catalog
            every = (catalog.everything, *catalog.topics.values(), *catalog.providers.values())
            found = _digest(f"{c.kind}:{c.key}:{self.collection(c)}" for c in every)
            self._collections[CATALOG] = found
        return found

    def of(self, source: str) -> str:
        """The digest of a route's source: a collection's `kind:key`, CATALOG or SITE."""
        if source == SITE:
            return ""
        if source == CATALOG:
            return self.whole()
        kind, _, key = source.partition(":")
        collection = self.catalog.collection(kind, key)
        return self.collection(collection) if collection is not None else "gone"

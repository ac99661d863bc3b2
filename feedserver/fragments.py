"""Rendered pieces shared by many responses of one catalog: an article's feed entry in each
format and its HTML card appear in the all-articles feed, its topics' and its provider's
feeds and pages, so the static export renders each once per catalog and reuses the bytes.

A memo is kept only where it is installed (the export, see export.py): a serving process
renders as before, and a response is the same bytes either way. A piece depends on the
article, the site's base URL and the display names of the article's topics and provider
(Catalog.names), which its key holds; so a piece outlives its catalog, and a --watch
rebuild renders again only the entries of articles that changed. `prune` forgets the
articles a catalog no longer shows."""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Iterable, Sequence
from typing import Any

from flask import Flask, current_app, has_app_context

from .catalog import Names
from .models import Article

EXTENSION = "feedserver.fragments"


class FragmentMemo:
    """Pieces by (kind, base URL, article, its names): each value is kept with its article,
    so that the article's id is not reused while the memo holds it."""

    def __init__(self) -> None:
        self._pieces: dict[Hashable, tuple[Article, Any]] = {}
        # The display names each article shows under the current catalog's names.
        self._names: Names | None = None
        self._named: dict[int, tuple[Article, tuple[str | None, ...]]] = {}
        # Each feed without its entries (by its identity): its fields, and its bytes.
        self._shells: dict[str, tuple[Hashable, bytes]] = {}
        # Pieces made from a list of articles, for one build: key -> (what the key names,
        # held so that no id in the key is reused, and the piece).
        self._lists: dict[Hashable, tuple[object, Any]] = {}
        self.made = 0  # pieces rendered, for tests and benchmarks

    def _key(self, names: Names, key: Hashable, article: Article) -> Hashable:
        if names is not self._names:  # a new catalog: its names may differ
            self._names, self._named = names, {}
        found = self._named.get(id(article))
        if found is None or found[0] is not article:
            provider = article.provider
            named = (
                names.provider(provider) if provider else None,
                *(names.topic(topic) for topic in article.topics),
            )
            found = self._named[id(article)] = (article, named)
        return (key, id(article), found[1])

    def get(self, names: Names, key: Hashable, article: Article, make: Callable[[], Any]) -> Any:
        """The piece for key and article under these names, made on the first call."""
        full_key = self._key(names, key, article)
        found = self._pieces.get(full_key)
        if found is not None and found[0] is article:
            return found[1]
        value = make()
        self._pieces[full_key] = (article, value)
        self.made += 1
        return value

    def lookup(self, names: Names, key: Hashable, article: Article) -> Any:
        """The piece if it was made, else None."""
        found = self._pieces.get(self._key(names, key, article))
        return found[1] if found is not None and found[0] is article else None

    def put(self, names: Names, key: Hashable, article: Article, value: Any) -> None:
        """Keep a piece made elsewhere (in a batch)."""
        self._pieces[self._key(names, key, article)] = (article, value)
        self.made += 1

    def joined(
        self, key: Hashable, names: Names, articles: Sequence[Article], make: Callable[[], Any]
    ) -> Any:
        """The piece made from these very articles in this order (key and names alike),
        made on the first call of a build."""
        full_key = (key, id(names), tuple(map(id, articles)))
        found = self._lists.get(full_key)
        if found is None:
            found = self._lists[full_key] = ((names, tuple(articles)), make())
        return found[1]

    def prune(self, articles: Iterable[Article], feeds: Container[str] = ()) -> None:
        """Forget the pieces of every article but these (those a new catalog shows), the
        shells of every feed but these (by their identity), and the lists of articles."""
        self._lists = {}
        shown = set(map(id, articles))
        self._pieces = {key: piece for key, piece in self._pieces.items() if id(piece[0]) in shown}
        self._shells = {feed: shell for feed, shell in self._shells.items() if feed in feeds}

    def shell(self, feed: str, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """A feed without its entries, by its identity and every feed-level field it shows
        (key): an edit of an entry leaves it as it was, so a rebuild reuses it, even after
        builds that did not render that feed."""
        found = self._shells.get(feed)
        if found is not None and found[0] == key:
            return found[1]
        made = make()
        self._shells[feed] = (key, made)
        return made


def install(app: Flask) -> FragmentMemo:
    """Give the app a memo of shared pieces (the export does; a server does not)."""
    memo: FragmentMemo = app.extensions.setdefault(EXTENSION, FragmentMemo())
    return memo


def current() -> FragmentMemo | None:
    """The current app's memo, or None where none is installed (a serving process)."""
    if not has_app_context():
        return None
    memo: FragmentMemo | None = current_app.extensions.get(EXTENSION)
    return memo


def card(article: Article, macro: Callable[[Article], Any], names: Names, urls: Any) -> Any:
    """An article's HTML card (the `article_item` macro's output), from the memo when one is
    installed: the same Markup either way."""
    memo = current()
    if memo is None:
        return macro(article)
    return memo.get(names, ("card", urls.base), article, lambda: macro(article))

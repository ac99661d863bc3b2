"""Rendered pieces shared by many responses of one catalog: an article's feed entry in each
format and its HTML card appear in the all-articles feed, its topics' and its provider's
feeds and pages, so the static export renders each once per catalog and reuses the bytes.

A memo is kept only where it is installed (the export, see export.py): a serving process
renders as before, and a response is the same bytes either way. A piece depends on the
article, the site's base URL and the catalog's display names: the memo is bound to one
catalog's `Names` (new with every catalog) and empties itself when another one asks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from flask import Flask, current_app, has_app_context

EXTENSION = "feedserver.fragments"


class FragmentMemo:
    """Pieces by (kind, base URL, article): each value is kept with its article, so that
    the article's id is not reused while the memo holds it."""

    def __init__(self) -> None:
        self.owner: object = None
        self._pieces: dict[Hashable, tuple[object, Any]] = {}
        self._lock = threading.Lock()
        self.made = 0  # pieces rendered, for tests and benchmarks

    def bound(self, owner: object) -> dict[Hashable, tuple[object, Any]]:
        """The pieces made under this catalog's names (none when they are new)."""
        with self._lock:
            if owner is not self.owner:
                self.owner = owner
                self._pieces = {}
            return self._pieces

    def get(self, owner: object, key: Hashable, article: object, make: Callable[[], Any]) -> Any:
        """The piece for key and article under owner, made on the first call."""
        pieces = self.bound(owner)
        full_key = (key, id(article))
        found = pieces.get(full_key)
        if found is not None and found[0] is article:
            return found[1]
        value = make()
        pieces[full_key] = (article, value)
        self.made += 1
        return value

    def lookup(self, owner: object, key: Hashable, article: object) -> Any:
        """The piece if it was made, else None."""
        found = self.bound(owner).get((key, id(article)))
        return found[1] if found is not None and found[0] is article else None

    def put(self, owner: object, key: Hashable, article: object, value: Any) -> None:
        """Keep a piece made elsewhere (in a batch)."""
        self.bound(owner)[(key, id(article))] = (article, value)
        self.made += 1


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


def card(article: Any, macro: Callable[[Any], Any], names: object, urls: Any) -> Any:
    """An article's HTML card (the `article_item` macro's output), from the memo when one is
    installed: the same Markup either way."""
    memo = current()
    if memo is None:
        return macro(article)
    return memo.get(names, ("card", urls.base), article, lambda: macro(article))

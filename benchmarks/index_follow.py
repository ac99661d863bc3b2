"""The search index across a reload: made from the index before (feedserver/search.py,
`SearchIndex.follow`) against a whole build of the same catalog's index.

Runs in a fresh process (see fresh.py): a cold load and a whole index, then rounds of a
reload with a share of the files edited, each followed by the index made from the one before
(what the reload job does) and a whole build of the same catalog's index, taken in turns.
Edits rewrite titles (an article keeps its place) or, with `move`, also move the article a
day later (every edited article changes place: the hardest renumbering).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from feedserver.catalog import collection_keys
from feedserver.search import SearchIndex
from feedserver.store import CatalogStore

from . import floors, trees
from .loading import MAX_FILE_BYTES, SITE_TITLE

_DATE = re.compile(r"^publishedDateTime: (\d{4}-\d\d-)(\d\d)", re.MULTILINE)


def _move_dates(root: Path, paths: list[str]) -> None:
    """Move each article's date by a day (the 1st to the 28th stay in any month)."""
    for path in paths:
        target = root / path
        text = target.read_text(encoding="utf-8")
        text = _DATE.sub(lambda m: f"publishedDateTime: {m[1]}{int(m[2]) % 28 + 1:02d}", text, 1)
        target.write_text(text, encoding="utf-8")


def follow_vs_build(root: str, seed: int, fraction: float, move: bool, rounds: int = 3) -> Any:
    """Seconds (wall and CPU) to make each reload's index from the one before, and to build
    the same catalog's index whole; the caller puts the edited files back."""
    changed = trees.sample_paths(Path(root), seed, fraction)
    store = CatalogStore(root, MAX_FILE_BYTES, SITE_TITLE)
    store.reload()
    first = floors.timed(store.catalog.search.prepare)
    runs = []
    for number in range(1, rounds + 1):
        trees.rewrite_titles(Path(root), changed, f"Update {number}:")
        if move:
            _move_dates(Path(root), changed)
        before = store.catalog
        report = store.reload()
        catalog = store.catalog
        followed = catalog.search._previous is before.search
        follow = floors.timed(catalog.search.prepare)
        whole = floors.timed(SearchIndex(catalog.everything.articles, collection_keys).prepare)
        runs.append(
            {"follow": follow, "whole": whole, "parsed": report.parsed, "followed": followed}
        )
    return {
        "first": first,
        "runs": runs,
        "articles": len(store.catalog.everything.articles),
        "bytes": store.catalog.search.nbytes(),
    }

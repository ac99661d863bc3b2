"""Loading the catalog: a cold load, a reload with nothing changed, a reload with 1% changed.

The functions here run in a fresh process (see fresh.py) and time `CatalogStore.reload()`,
the store the server itself uses, side by side with the floors of floors.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedserver.store import CatalogStore

from . import floors, trees

MAX_FILE_BYTES = 1 << 20
SITE_TITLE = "feedserver benchmarks"


def _cold(store: CatalogStore) -> dict[str, Any]:
    reports = []
    timing = floors.timed(lambda: reports.append(store.reload()))
    report = reports[0]
    return {
        "cold": timing,
        "files": report.files,
        "parsed": report.parsed,
        "articles": len(store.catalog.everything.articles),
        "topics": len(store.catalog.topics),
        "providers": len(store.catalog.providers),
    }


def cold_load(root: str) -> dict[str, Any]:
    """A fresh CatalogStore's first reload: from nothing to a ready catalog."""
    return _cold(CatalogStore(root, MAX_FILE_BYTES, SITE_TITLE))


def cold_then_reloads(root: str, seed: int, fraction: float, repeats: int = 3) -> dict[str, Any]:
    """A cold load, then reloads with no change and with a fraction of the files edited
    (trees.sample_paths chooses them; the caller puts them back, see trees.editing).

    Each reload is timed next to the floor it is held against, measured in this same process
    just before it: the stat floor, and the parse floor of the edited files.
    """
    changed = trees.sample_paths(Path(root), seed, fraction)
    store = CatalogStore(root, MAX_FILE_BYTES, SITE_TITLE)
    result = _cold(store)
    parsed: list[int] = []

    def reload() -> None:
        parsed.append(store.reload().parsed)

    unchanged = []
    for _ in range(repeats):
        stat = floors.timed(floors.stat_tree, root)
        unchanged.append({"reload": floors.timed(reload), "stat": stat, "parsed": parsed[-1]})
    edited = []
    for round_number in range(1, repeats + 1):
        trees.rewrite_titles(Path(root), changed, f"Update {round_number}:")
        stat = floors.timed(floors.stat_tree, root)
        parse = floors.timed(floors.parse_files, root, changed)
        timing = floors.timed(reload)
        edited.append({"reload": timing, "stat": stat, "parse": parse, "parsed": parsed[-1]})
    result["unchanged"] = unchanged
    result["edited"] = edited
    return result


def watched_reloads(root: str, repeats: int = 3) -> dict[str, Any]:
    """Reloads with nothing changed by a store that follows inotify's events (where inotify
    works), each timed next to the stat floor; after a cold load and the two reloads that
    set up the watches (the first makes them, the second lists each watched folder once)."""
    store = CatalogStore(root, MAX_FILE_BYTES, SITE_TITLE, watch=True)
    store.reload()
    store.reload()
    store.reload()
    runs = []
    for _ in range(repeats):
        stat = floors.timed(floors.stat_tree, root)
        runs.append({"reload": floors.timed(store.reload), "stat": stat})
    return {"runs": runs, "watching": store.scan_plan.watch}

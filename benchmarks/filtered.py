"""Filtered cost: how long an uncached filtered feed request takes (`q`, `sort=heat|quality`,
`min_quality` and combinations), on the all-articles feed and on the biggest topic.

Each request is one in-process WSGI call, as in flat.py, made uncached by putting a copy of
the catalog in place first (the render cache keeps responses for one catalog object only;
the copy shares the catalog's search index, as every request to one catalog does). The
index's parts are built by the first requests, before any is timed; what that first build
costs is measured apart, on a fresh index of the same articles.

    python -m benchmarks.filtered ROOT     (child side of side_by_side: see flat.py)
"""

from __future__ import annotations

import copy
import gc
import statistics
import sys
import time
from typing import Any

from feedserver.catalog import collection_keys
from feedserver.query import parse_feed_query, select_page
from feedserver.search import SearchIndex

from .flat import (
    BASE_URL,
    answer_turns,
    biggest_topic,
    call,
    environ_for,
    pin_to_one_cpu,
    take_turns,
)

# Words of benchmarks/generate.py's vocabulary, whole and in pieces; every title and excerpt
# is drawn from 36 words, so each matches most articles: the dense case, the one a scan of
# the corpus made slowest. Each query fills its page at every size (the biggest topic has
# about 200 articles at 1,000 files), so that both sides render as many entries.
QUERIES = (
    "q=cloud",
    "q=chip+mod",
    "sort=heat",
    "sort=quality",
    "min_quality=60",
    "q=data&sort=heat",
    "q=market+energ&min_quality=40&sort=quality",
    "q=quantum&sort=heat&page=2",
    "q=nowhere",
)
# The same feeds without a query, rendered uncached the same way: what a request costs
# besides selecting its articles, at this size.
CONTROL = ""


class FilteredTimer:
    """An app over one seed tree, timing uncached filtered requests."""

    def __init__(self, root: str) -> None:
        from feedserver import create_app

        pin_to_one_cpu()
        # The same client asks the same feeds again and again: no 429 for polling too often.
        self.app = create_app({"seeds_dir": root, "base_url": BASE_URL, "polite_polling": False})
        gc.freeze()  # as a serving process does once loaded (gunicorn_hooks.serving_app)
        self.store = self.app.extensions["feedserver.store"]
        feeds = {"all": "/feed.rss", "topic": f"/topics/{biggest_topic(self.app)}.rss"}
        self.requests = {
            (feed, query): dict(environ_for(path), QUERY_STRING=query)
            for feed, path in feeds.items()
            for query in (*QUERIES, CONTROL)
        }
        self.paths = feeds
        call(self.app, environ_for(feeds["all"]))  # the process's first render, unfiltered
        self.first: dict[str, float] = {}
        for (feed, query), environ in self.requests.items():
            wall, _, status, _ = call(self.app, environ)
            if not status.startswith("200"):
                raise RuntimeError(f"{feeds[feed]}?{query} answered {status}")
            self.first[f"{feed} {query}"] = wall
        self.timings: dict[tuple[str, str], list[tuple[float, float]]] = {
            key: [] for key in self.requests
        }

    def batch(self, count: int) -> None:
        """Time count uncached requests of every kind, taking turns between kinds."""
        for _ in range(count):
            for key, environ in self.requests.items():
                self.store.catalog = copy.copy(self.store.catalog)
                wall, cpu, _, _ = call(self.app, environ)
                self.timings[key].append((wall, cpu))

    def selection_costs(self, repeats: int = 5) -> dict[str, dict[str, float]]:
        """Median seconds of select_page alone, with the index and by a scan, per request."""
        catalog = self.store.catalog
        collections = {
            "all": catalog.everything,
            "topic": catalog.topics[self.paths["topic"].split("/")[-1].removesuffix(".rss")],
        }
        costs = {}
        for feed, query_string in self.requests:
            if query_string == CONTROL:
                continue
            collection = collections[feed]
            args: dict[str, list[str]] = {}
            for pair in query_string.split("&"):
                name, _, value = pair.partition("=")
                args[name] = [value.replace("+", " ")]
            query = parse_feed_query(args, 50, 500)
            key = (collection.kind, collection.key)
            indexed, scanned = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                select_page(collection.articles, query, catalog.search, key)
                indexed.append(time.perf_counter() - started)
                started = time.perf_counter()
                select_page(collection.articles, query)
                scanned.append(time.perf_counter() - started)
            costs[f"{feed} {query_string}"] = {
                "index": statistics.median(indexed),
                "scan": statistics.median(scanned),
            }
        return costs

    def build_costs(self) -> dict[str, float]:
        """Seconds to build each part of a fresh index of the served articles, and its bytes."""
        catalog = self.store.catalog
        fresh = SearchIndex(catalog.everything.articles, collection_keys)
        parts = {
            "words": fresh.words,
            "heat order": lambda: fresh.order("heat"),
            "quality order and prefixes": fresh.at_least,
            "collection members": fresh.prepare,  # the one part left
        }
        costs = {}
        for name, build in parts.items():
            started = time.perf_counter()
            build()
            costs[name] = time.perf_counter() - started
        costs["bytes"] = fresh.nbytes()
        costs["served index bytes"] = catalog.search.nbytes()
        costs["articles"] = len(catalog.everything.articles)
        return costs

    def summary(self) -> dict[str, Any]:
        """Every figure, as JSON-ready numbers."""
        medians = {
            f"{feed} {query}": {
                "wall": statistics.median(wall for wall, _ in timings),
                "cpu": statistics.median(cpu for _, cpu in timings),
                "requests": len(timings),
            }
            for (feed, query), timings in self.timings.items()
        }
        pooled = {
            feed: {
                clock: statistics.median(
                    timing[index]
                    for (kind, query), timings in self.timings.items()
                    if kind == feed and query != CONTROL
                    for timing in timings
                )
                for index, clock in enumerate(("wall", "cpu"))
            }
            for feed in self.paths
        }
        return {
            "paths": self.paths,
            "medians": medians,
            "pooled": pooled,
            "first": self.first,
            "selection": self.selection_costs(),
            "build": self.build_costs(),
        }


def side_by_side(roots: list[str], batches: int = 20, batch: int = 2) -> list[dict[str, Any]]:
    """The figures of several trees, each in its own fresh process pinned to the same CPU,
    taking turns every `batch` requests of each kind, so that all see the same machine."""
    return take_turns([["benchmarks.filtered", root] for root in roots], batches, batch)


def main() -> None:
    """Child side of side_by_side: load, make the first requests, then answer batches."""
    timer = FilteredTimer(sys.argv[1])
    answer_turns(timer.batch, timer.summary)


if __name__ == "__main__":
    main()

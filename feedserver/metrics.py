"""Prometheus metrics: request counts, cache results, render times, reloads, the catalog's
size, WebSub pings and subscribers per feed, in the text format of `/metrics`.

Under gunicorn each worker is a process of its own: with PROMETHEUS_MULTIPROC_DIR set (the
bundled gunicorn settings and `feedserver serve` set it to a fresh folder per server and
clean it at start), each process writes its values to files there and `/metrics` adds them
up across workers (prometheus_client's multiprocess mode). Without it, the figures are those
of the one process that answers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import metric_files
from .audience import feed_of
from .urls import FEED_EXTENSIONS, LISTINGS

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LISTINGS = frozenset(LISTINGS)
_STATUS_CLASSES = {"200", "301", "304", "400", "404", "405", "429", "500", "503"}


def multiprocess_dir() -> str | None:
    """The folder of the multiprocess mode, when a server set one up."""
    return os.environ.get(MULTIPROC_ENV) or None


def route_kind(path: str) -> tuple[str, str]:
    """(kind, format) of a path: bounded label values whatever a client asks for."""
    extension = path.rpartition(".")[2] if "." in path.rpartition("/")[2] else ""
    feed = feed_of(path)
    if feed is not None:
        kind = feed.partition(":")[0]
        return kind, extension if extension in FEED_EXTENSIONS else "html"
    if path in _LISTINGS:
        return "listing", extension
    for name in ("healthz", "metrics", "stats", "static"):
        if path.startswith(f"/{name}"):
            return name, ""
    return "other", ""


class ServerMetrics:
    """Every metric of one server process."""

    def __init__(self, subscribers: Callable[[], dict[str, int]] | None = None) -> None:
        self.directory = multiprocess_dir()
        if self.directory is not None:
            metric_files.install()  # before any value's file is made: no sparse mappings
        if self.directory is not None and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client chose its value class when first imported; the folder may
            # have been set up after that, in this same process.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        # In multiprocess mode the values live in files; a fresh registry reads them all.
        own = None if self.directory else CollectorRegistry()
        self._own_registry = own
        self.requests = Counter(
            "feedserver_requests",
            "Requests answered, by route kind, format and status.",
            ["kind", "format", "status"],
            registry=own,
        )
        self.cache = Counter(
            "feedserver_cache_lookups",
            "Rendered-response cache lookups, by result (hit or miss).",
            ["result"],
            registry=own,
        )
        self.render_seconds = Histogram(
            "feedserver_render_seconds",
            "Time to render a response that was not cached.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=own,
        )
        self.limited = Counter(
            "feedserver_limited_requests",
            "Unconditional polls refused with 429 for coming faster than the feed's hint.",
            registry=own,
        )
        self.websub = Counter(
            "feedserver_websub_pings", "WebSub pings, by outcome.", ["outcome"], registry=own
        )
        self.reload_gauges = {
            name: Gauge(
                f"feedserver_reload_{name}",
                text,
                registry=own,
                multiprocess_mode="mostrecent",
            )
            for name, text in (
                ("duration_seconds", "Duration of the last reload."),
                ("files", "Seed files seen by the last reload."),
                ("parsed", "Seed files parsed by the last reload."),
                ("failed", "Seed files that could not be used at the last reload."),
                ("stale", "Seed files served from their last good version."),
            )
        }
        self.catalog_gauges = {
            name: Gauge(
                f"feedserver_{name}",
                f"{name.capitalize()} served now.",
                registry=own,
                multiprocess_mode="mostrecent",
            )
            for name in ("articles", "topics", "providers")
        }
        self._subscribers = subscribers

    def count_request(self, path: str, status: str, cache: str) -> None:
        """Count one answered request (called off the hot path)."""
        kind, extension = route_kind(path)
        code = status if status in _STATUS_CLASSES else "other"
        self.requests.labels(kind, extension, code).inc()
        if cache in ("hit", "miss"):
            self.cache.labels(cache).inc()
        if status == "429":
            self.limited.inc()

    def observe_reload(self, report: Any, articles: int, topics: int, providers: int) -> None:
        """Set the reload and catalog gauges from a reload's report."""
        gauges = self.reload_gauges
        gauges["duration_seconds"].set(report.duration_seconds)
        gauges["files"].set(report.files)
        gauges["parsed"].set(report.parsed)
        gauges["failed"].set(report.failed)
        gauges["stale"].set(len(report.stale))
        self.catalog_gauges["articles"].set(articles)
        self.catalog_gauges["topics"].set(topics)
        self.catalog_gauges["providers"].set(providers)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format, added up across processes."""
        if self._own_registry is not None:
            registry = self._own_registry
        else:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        if self._subscribers is not None:
            registry = _with(registry, _SubscriberCollector(self._subscribers))
        return generate_latest(registry)


def _with(registry: CollectorRegistry, collector: Collector) -> CollectorRegistry:
    combined = CollectorRegistry()
    combined.register(_Forward(registry))
    combined.register(collector)
    return combined


class _Forward(Collector):
    """Hands on another registry's metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


class _SubscriberCollector(Collector):
    """Subscribers per feed, read from the shared stats database when scraped."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "feedserver_subscribers",
            "Subscribers per feed today: aggregators' reported counts plus direct pollers.",
            labels=["feed"],
        )
        for feed, count in sorted(self.read().items()):
            family.add_metric([feed], count)
        yield family


def clean_multiprocess_dir(directory: str) -> None:
    """Empty the metrics folder at a server's start (old servers' files would add up)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's child_exit hook)."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]

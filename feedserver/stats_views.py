"""The audience and the server, for the newsroom: `/stats`, `/stats.json` (subscribers and
polls per feed, with a daily history) and `/metrics` (Prometheus). Trusted addresses only,
unless configured public. Also where the counting is wired into an app."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from .audience import ALL_FEED
from .catalog import Catalog, Collection
from .chart import daily_chart
from .config import Settings, current_settings
from .health import is_trusted
from .jsontext import json_bytes, utc_time
from .metrics import CONTENT_TYPE, ServerMetrics
from .politeness import AudienceMiddleware, polite_limiter
from .polls import PollRecorder
from .responses import CONTENT_TYPES, CSP, NO_STORE, NOSNIFF, site_base
from .server_state import polling_table, stats_db_path
from .statsdb import FeedDay, SiteDay, StatsDB, StatsError, latest_by_feed, site_days
from .store import CatalogStore
from .urls import METRICS, STATS, STATS_JSON, Urls

logger = logging.getLogger(__name__)

bp = Blueprint("stats", __name__)

HISTORY_DAYS = 30
NO_STORE_HEADERS = dict([("Cache-Control", NO_STORE), NOSNIFF])


def _refuse_unless_allowed(public: bool) -> None:
    """Refuse an untrusted address unless `public` (stats_public or metrics_public)."""
    if not public and not is_trusted(request.remote_addr, current_settings().health_details_from):
        abort(403, description="only trusted addresses may see this")


def _db() -> StatsDB | None:
    db: StatsDB | None = current_app.extensions["feedserver.stats_db"]
    return db


def _read_days(days: int) -> tuple[list[FeedDay], list[SiteDay]]:
    """Each feed's figures per day, and the site's (each reader once), for the last days."""
    db = _db()
    if db is None:
        abort(404, description="stats are off: the stats_db setting is empty")
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    try:
        feed_days = db.read(since)
        return feed_days, site_days(feed_days, db.read_direct_readers(since))
    except StatsError as error:
        logger.error("%s", error)
        abort(503, description="the stats database cannot be read; see the server's log")


def _collection(catalog: Catalog, feed: str) -> Collection | None:
    if feed == ALL_FEED:
        return catalog.everything
    kind, _, key = feed.partition(":")
    return catalog.collection(kind, key)


def _feed_name(feed: str, collection: Collection | None) -> str:
    if feed == ALL_FEED:
        return "All articles"
    return collection.name if collection else feed.partition(":")[2]


def stats_data(
    days: list[FeedDay], site: list[SiteDay], catalog: Catalog, urls: Urls
) -> dict[str, Any]:
    """The figures of `/stats.json`: per feed today, and per day for all feeds (each reader
    counted once, see statsdb.site_days)."""
    feeds = []
    for feed, latest in sorted(
        latest_by_feed(days).items(), key=lambda item: (-item[1].subscribers, item[0])
    ):
        collection = _collection(catalog, feed)
        feeds.append(
            {
                "feed": feed,
                "name": _feed_name(feed, collection),
                "page": urls.page(collection) if collection else None,
                "rss": urls.feed(collection, "rss") if collection else None,
                "day": latest.day,
                "subscribers": latest.subscribers,
                "direct": latest.direct,
                "aggregators": dict(sorted(latest.aggregators.items())),
                "polls": latest.polls,
                "limited": latest.limited,
                "history": [
                    {"day": d.day, "subscribers": d.subscribers, "polls": d.polls}
                    for d in days
                    if d.feed == feed
                ],
            }
        )
    return {
        "generated": utc_time(datetime.now(UTC)),
        "feeds": feeds,
        "days": [
            {
                "day": d.day,
                "subscribers": d.subscribers,
                "direct": d.direct,
                "aggregators": d.aggregators,
                "polls": d.polls,
                "limited": d.limited,
            }
            for d in site
        ],
    }


def _store() -> CatalogStore:
    store: CatalogStore = current_app.extensions["feedserver.store"]
    return store


def _urls() -> Urls:
    return Urls(site_base(request.environ, current_settings().base_url))


@bp.get(STATS_JSON)
def stats_json() -> Response:
    """Subscribers and polls per feed, today and per day."""
    _refuse_unless_allowed(current_settings().stats_public)
    data = stats_data(*_read_days(HISTORY_DAYS), _store().catalog, _urls())
    body = json_bytes(data)
    return Response(body, content_type=CONTENT_TYPES["api"], headers=NO_STORE_HEADERS)


@bp.get(STATS)
def stats_page() -> Response:
    """The same figures as a page, with a daily chart drawn as inline SVG."""
    _refuse_unless_allowed(current_settings().stats_public)
    data = stats_data(*_read_days(HISTORY_DAYS), _store().catalog, _urls())
    start = datetime.now(UTC).date() - timedelta(days=HISTORY_DAYS - 1)
    by_day = {d["day"]: d for d in data["days"]}
    series = [
        (day, by_day.get(day.isoformat(), {}).get("subscribers", 0))
        for day in (start + timedelta(days=n) for n in range(HISTORY_DAYS))
    ]
    body = render_template(
        "stats.html",
        site_title=current_settings().site_title,
        data=data,
        chart=daily_chart(series, "Subscribers per day, all feeds"),
    )
    return Response(body, headers=dict([("Cache-Control", NO_STORE), NOSNIFF, CSP]))


@bp.get(METRICS)
def metrics() -> Response:
    """Prometheus metrics, added up across the server's workers."""
    _refuse_unless_allowed(current_settings().metrics_public)
    server_metrics: ServerMetrics = current_app.extensions["feedserver.metrics"]
    store = _store()
    if store.last_report is not None:
        catalog = store.catalog
        server_metrics.observe_reload(
            store.last_report,
            len(catalog.everything.articles),
            len(catalog.topics),
            len(catalog.providers),
        )
    return Response(
        server_metrics.exposition(), content_type=CONTENT_TYPE, headers=NO_STORE_HEADERS
    )


def _subscribers_today(db: StatsDB) -> dict[str, int]:
    try:
        days = db.read(datetime.now(UTC).date())
    except StatsError as error:
        logger.error("%s", error)
        return {}
    return {feed: day.subscribers for feed, day in latest_by_feed(days).items()}


def init_app(app: Flask, settings: Settings) -> PollRecorder:
    """Count polls, enforce polite polling and serve the figures; returns the recorder."""
    db = None
    if settings.stats_db:
        # The recorder creates its tables now and reports a failure on /healthz at once.
        db = StatsDB(stats_db_path(settings.stats_db), settings.stats_retention_days)
    metrics = ServerMetrics((lambda: _subscribers_today(db)) if db is not None else None)
    recorder = PollRecorder(db, metrics, settings.stats_flush_seconds)
    limiter = None
    if settings.polite_polling:
        limiter = polite_limiter(polling_table(), settings.reload_interval)
    app.extensions["feedserver.stats_db"] = db
    app.extensions["feedserver.metrics"] = metrics
    app.extensions["feedserver.polls"] = recorder
    app.register_blueprint(bp)
    app.wsgi_app = AudienceMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        recorder,
        limiter,
        settings.trusted_proxies,
    )
    return recorder

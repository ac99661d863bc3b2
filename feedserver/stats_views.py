"""The audience and the server, for the newsroom: `/stats`, `/stats.json` (subscribers and
polls per feed, with a daily history) and `/metrics` (Prometheus). Trusted addresses only,
unless configured public. Also where the counting is wired into an app."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from .audience import ALL_FEED, is_served
from .blocking import off_the_loop
from .catalog import Catalog, Collection
from .chart import daily_chart
from .config import current_settings
from .jsontext import json_bytes, utc_time
from .metrics import CONTENT_TYPE, ServerMetrics
from .networks import peer_in
from .politeness import AudienceMiddleware, polite_limiter
from .polls import PollRecorder
from .responses import CONTENT_TYPES, CSP, NO_STORE, NOSNIFF, site_base
from .server_state import polling_table, stats_db_path
from .settings import Settings
from .stats_figures import FeedDay, SiteDay, latest_by_feed, site_days
from .statsdb import OTHER_FEED, StatsDB, StatsError, StatsRefused
from .store import CatalogStore
from .urls import METRICS, STATS, STATS_JSON, Urls

logger = logging.getLogger(__name__)

bp = Blueprint("stats", __name__)

HISTORY_DAYS = 30
# Feeds listed per page of /stats and /stats.json (the rest are added up), and feeds with a
# label of their own in /metrics (the rest are feed="other"): however many feeds a day
# holds, a page and a scrape stay small.
FEEDS_PER_PAGE = 100
METRIC_FEEDS = 50
NO_STORE_HEADERS = dict([("Cache-Control", NO_STORE), NOSNIFF])


def _refuse_unless_allowed(public: bool) -> None:
    """Refuse an untrusted address unless `public` (stats_public or metrics_public)."""
    if not public and not peer_in(request.remote_addr, current_settings().health_details_from):
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
        # Off the event loop: a database locked by another process must not stall serving.
        feed_days, readers = off_the_loop(lambda: (db.read(since), db.read_direct_readers(since)))
        return feed_days, site_days(feed_days, readers)
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
    if feed == OTHER_FEED:
        return "Other feeds (past the day's bounds)"
    return collection.name if collection else feed.partition(":")[2]


def stats_data(
    days: list[FeedDay], site: list[SiteDay], catalog: Catalog, urls: Urls, page: int = 1
) -> dict[str, Any]:
    """The figures of `/stats.json`: one page of feeds (most subscribers first) with their
    history, the rest added up, and per day for all feeds (each reader counted once, see
    stats_figures.site_days)."""
    ranked = sorted(latest_by_feed(days).items(), key=lambda item: (-item[1].subscribers, item[0]))
    pages = max(1, -(-len(ranked) // FEEDS_PER_PAGE))
    shown = ranked[(page - 1) * FEEDS_PER_PAGE : page * FEEDS_PER_PAGE]
    names = {feed for feed, _ in shown}
    histories: dict[str, list[dict[str, Any]]] = {feed: [] for feed in names}
    for d in days:  # one pass: a feed's history is not looked up among every feed's days
        if d.feed in names:
            histories[d.feed].append({"day": d.day, "subscribers": d.subscribers, "polls": d.polls})
    rest = [latest for feed, latest in ranked if feed not in names]
    feeds = []
    for feed, latest in shown:
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
                "history": histories[feed],
            }
        )
    return {
        "generated": utc_time(datetime.now(UTC)),
        "page": page,
        "pages": pages,
        "feed_count": len(ranked),
        "feeds": feeds,
        # The feeds of every other page, added up (each feed's newest day).
        "rest": {
            "feeds": len(rest),
            "subscribers": sum(d.subscribers for d in rest),
            "polls": sum(d.polls for d in rest),
            "limited": sum(d.limited for d in rest),
        },
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


def _page_asked() -> int:
    text = request.args.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        abort(400, description="page must be a whole number from 1")
    return int(text)


@bp.get(STATS_JSON)
def stats_json() -> Response:
    """Subscribers and polls per feed, today and per day; FEEDS_PER_PAGE feeds a page."""
    _refuse_unless_allowed(current_settings().stats_public)
    page = _page_asked()
    data = stats_data(*_read_days(HISTORY_DAYS), _store().catalog, _urls(), page)
    if page > data["pages"]:
        abort(404, description=f"page {page} does not exist; the last page is {data['pages']}")
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
    """Today's subscribers of the METRIC_FEEDS feeds with most, the rest as `other`."""
    try:
        days = off_the_loop(lambda: db.read(datetime.now(UTC).date()))
    except StatsError as error:
        logger.error("%s", error)
        return {}
    ranked = sorted(
        ((day.subscribers, feed) for feed, day in latest_by_feed(days).items()),
        key=lambda item: (-item[0], item[1]),
    )
    named = [(count, feed) for count, feed in ranked if feed != OTHER_FEED][:METRIC_FEEDS]
    counts = {feed: count for count, feed in named}
    rest = sum(count for count, feed in ranked if feed not in counts)
    if len(ranked) > len(counts):
        counts[OTHER_FEED] = rest
    return counts


def _app_store(app: Flask) -> CatalogStore:
    store: CatalogStore = app.extensions["feedserver.store"]
    return store


def init_app(app: Flask, settings: Settings) -> PollRecorder:
    """Count polls, enforce polite polling and serve the figures; returns the recorder."""
    db = None
    problem = None
    if settings.stats_db:
        # The recorder creates its tables now and reports a failure on /healthz at once.
        db = StatsDB(stats_db_path(settings.stats_db), settings.stats_retention_days)
        try:
            db.initialize()
        except StatsRefused as error:
            # One line, and counting stays off until the file is the server's own again.
            logger.error("%s; polls are not counted, serving goes on", error)
            problem = str(error)
        except StatsError as error:
            logger.error("%s; serving without counting polls", error)
            problem = str(error)
    metrics = ServerMetrics((lambda: _subscribers_today(db)) if db is not None else None)
    store = _app_store(app)
    recorder = PollRecorder(
        db,
        metrics,
        settings.stats_flush_seconds,
        is_served=lambda feed: is_served(store.catalog, feed),
        error=problem,
    )
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

"""feedserver: a directory of news-article documents served as RSS, Atom and JSON feeds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import errors, pages, redirects, scheduler, slashes, web, websub
from .cache import RenderCache
from .cached_responses import CachedResponses
from .config import SETTINGS_EXTENSION, check_seeds_dir, load_config
from .health import ProblemSummaries
from .logs import configure_logging
from .responses import add_nosniff
from .settings import Settings
from .snapshot import load_store
from .store import CatalogStore

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | Mapping[str, Any] | None = None, *, reload_in_background: bool = False
) -> Flask:
    """Build the app: read the seeds once, and register the routes.

    `settings` are loaded ones (load_config), or overrides of the config file and environment
    to load them with. With `reload_in_background`, each serving process reloads the seeds on
    a schedule. Raises StartupError (one line) for a bad setting or a seeds directory that
    cannot be listed.
    """
    configure_logging()
    if not isinstance(settings, Settings):
        settings = load_config(settings)
    check_seeds_dir(settings.seeds_dir)
    app = Flask(__name__)
    app.extensions[SETTINGS_EXTENSION] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = CatalogStore(
        settings.seeds_dir,
        settings.max_file_bytes,
        settings.site_title,
        watch=settings.watch_seeds,
    )
    report = load_store(store, settings.cache_dir)
    if report.error:
        logger.warning("starting without articles: %s", report.error)
    app.extensions["feedserver.store"] = store
    app.extensions["feedserver.cache"] = RenderCache(settings.render_cache_bytes)
    app.extensions["feedserver.health"] = ProblemSummaries()
    # werkzeug would answer "//" in a path with a redirect built from the Host header.
    app.url_map.merge_slashes = False
    app.register_blueprint(web.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(redirects.bp)
    errors.init_app(app)
    slashes.init_app(app)
    app.after_request(add_nosniff)
    # Cached responses are answered before Flask is involved at all.
    app.wsgi_app = CachedResponses(  # type: ignore[method-assign]
        app.wsgi_app,
        store,
        app.extensions["feedserver.cache"],
        settings.base_url,
        settings.reload_interval,
    )
    # Outermost: every answer, cached or not, is counted, and impolite polls are refused.
    from . import stats_views  # imports prometheus_client: only once an app is built

    stats_views.init_app(app, settings)
    if reload_in_background:
        reloads = scheduler.init_app(app, store, settings.reload_interval)
        websub.init_app(app, reloads, settings)
    return app

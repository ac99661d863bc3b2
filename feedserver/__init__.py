"""feedserver: a directory of news-article documents served as RSS, Atom and JSON feeds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from . import errors, scheduler, web, websub
from .cache import RenderCache
from .config import load_config
from .store import CatalogStore

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src https: http:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _add_security_headers(response: Response) -> Response:
    if "X-Content-Type-Options" not in response.headers:  # cached responses carry it already
        response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def _configure_logging() -> None:
    """Send the app's INFO lines (one per reload) to stderr unless logging is set up already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        )


def create_app(
    config: Mapping[str, Any] | None = None, *, reload_in_background: bool = False
) -> Flask:
    """Build the app: load settings, read the seeds once, and register the routes.

    `config` overrides settings from the config file and environment. With
    `reload_in_background`, each serving process reloads the seeds on a schedule.
    """
    settings = load_config(config)
    _configure_logging()
    app = Flask(__name__)
    app.config["FEEDSERVER"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = CatalogStore(settings["seeds_dir"], settings["max_file_bytes"], settings["site_title"])
    report = store.reload()
    if report.error:
        logger.warning("starting without articles: %s", report.error)
    app.extensions["feedserver.store"] = store
    app.extensions["feedserver.cache"] = RenderCache()
    # werkzeug would answer "//" in a path with a redirect built from the Host header.
    app.url_map.merge_slashes = False
    app.register_blueprint(web.bp)
    errors.init_app(app)
    app.after_request(_add_security_headers)
    if reload_in_background:
        websub.init_app(app, scheduler.init_app(app, store))
    return app

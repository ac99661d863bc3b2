"""Paths with repeated slashes (`//feed.rss`, `/topics//ai.rss`, `/static/%2fetc`) name
nothing here: a 404, as any other unknown path gets. werkzeug's routing would otherwise match
`//feed.rss` as `/feed.rss`, making a second URL of every feed (a cache entry, polling
allowance and line in the figures of its own), and a redirect would have to guess what an
encoded slash meant."""

from __future__ import annotations

from flask import Flask, abort, request


def refuse_repeated_slashes() -> None:
    """Before every route: a 404 for a path with an empty segment."""
    if "//" in request.environ.get("PATH_INFO", ""):
        abort(404, description="no such page: a path has single slashes")


def init_app(app: Flask) -> None:
    """Register the check before every route."""
    app.before_request(refuse_repeated_slashes)

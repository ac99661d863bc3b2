"""Error responses: an HTML page for a person's browser, a short plain message or JSON for
programs; never a stack trace, a path of the machine or a setting's value. Feeds and JSON
keep their plain errors, which readers show or log as they are."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from . import accept
from .config import current_settings
from .negotiation import is_navigation, is_public_data
from .responses import CONTENT_TYPES, CORS, CSP, NO_STORE
from .urls import HEALTH

logger = logging.getLogger(__name__)

JSON_OR_TEXT = ("text/plain", "application/json")


def _wants_json() -> bool:
    # The bounded Accept, parsed once per request (accept.py), not werkzeug's whole header.
    best = accept.best_match(accept.summary_of(request.environ), JSON_OR_TEXT)
    return best == "application/json" or request.path.endswith((".json", HEALTH))


def _wants_page() -> bool:
    """A browser opening a page (not a feed, a listing or /healthz) gets an HTML page."""
    path = request.path
    if is_public_data(path) or path == HEALTH or path.endswith((".json", ".opml")):
        return False
    return is_navigation(request.environ)


def _error_page(code: int, name: str, message: str) -> str | None:
    """The HTML error page, or None (plain text then) when it cannot be rendered."""
    try:
        site_title = current_settings().site_title
        return render_template(
            "error.html", site_title=site_title, code=code, name=name, message=message
        )
    except Exception:
        logger.exception("could not render the error page for %s", request.path)
        return None


def error_response(error: HTTPException) -> Response:
    """The response for an HTTP error, in the form the client prefers."""
    code = error.code or 500
    message = str(error.description) if code < 500 else "internal server error"
    page = _error_page(code, error.name, message) if _wants_page() else None
    if page is not None:
        response = Response(page, code, content_type=CONTENT_TYPES["html"])
        response.headers.set(*CSP)
    elif _wants_json():
        body = json.dumps({"error": error.name, "status": code, "message": message}) + "\n"
        response = Response(body, code, content_type=CONTENT_TYPES["api"])
    else:
        text = f"{code} {error.name}: {message}\n"
        response = Response(text, code, content_type=CONTENT_TYPES["text"])
    if is_public_data(request.path):
        response.headers.set(*CORS)  # a page's script may read why a fetch failed
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    response.headers["Cache-Control"] = NO_STORE
    return response


def unexpected_error(error: Exception) -> Response:
    """A 500 for an exception no handler expected; the details go to the log only."""
    logger.exception("unexpected error serving %s", request.path)
    return error_response(InternalServerError())


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(Exception, unexpected_error)

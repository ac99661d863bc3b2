"""Error responses: a short plain message, or JSON when the client asks for JSON; never a
stack trace, a path of the machine or a setting's value."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

logger = logging.getLogger(__name__)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/plain", "application/json"])
    return best == "application/json" or request.path.endswith((".json", "/healthz"))


def error_response(error: HTTPException) -> Response:
    """The response for an HTTP error, in the form the client prefers."""
    code = error.code or 500
    message = error.description if code < 500 else "internal server error"
    if _wants_json():
        body = json.dumps({"error": error.name, "status": code, "message": message}) + "\n"
        response = Response(body, code, content_type="application/json")
    else:
        text = f"{code} {error.name}: {message}\n"
        response = Response(text, code, content_type="text/plain; charset=utf-8")
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    response.cache_control.no_store = True
    return response


def unexpected_error(error: Exception) -> Response:
    """A 500 for an exception no handler expected; the details go to the log only."""
    logger.exception("unexpected error serving %s", request.path)
    return error_response(InternalServerError())


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(Exception, unexpected_error)

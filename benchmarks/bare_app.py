"""The serving floor: a bare Flask app whose every route answers with the same bytes.

    BENCH_BODY_FILE=feed.rss BENCH_CONTENT_TYPE='application/rss+xml; charset=utf-8' \\
        gunicorn benchmarks.bare_app:app

The bytes are read once at import, so a request costs only Flask's routing and response.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response

BODY = Path(os.environ.get("BENCH_BODY_FILE", os.devnull)).read_bytes()
CONTENT_TYPE = os.environ.get("BENCH_CONTENT_TYPE", "application/octet-stream")

app = Flask(__name__)


@app.get("/", defaults={"path": ""})
@app.get("/<path:path>")
def constant(path: str) -> Response:
    """The same bytes for every path."""
    return Response(BODY, content_type=CONTENT_TYPE)

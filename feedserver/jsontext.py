"""How the site writes JSON (JSON Feed, the listings, /healthz, /stats.json): UTF-8 text
indented by two spaces with a final newline, and times in UTC as RFC 3339 with a `Z`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def json_bytes(data: Any) -> bytes:
    """The data as the site's JSON bytes: non-ASCII kept as UTF-8, indented, newline-ended."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def utc_time(moment: datetime) -> str:
    """A UTC time as RFC 3339 text ending in `Z`: `2024-05-01T12:00:00Z`."""
    return moment.isoformat().replace("+00:00", "Z")

"""When the collections an article belongs to last changed: the time a reload files under
each collection, from its seed file's modification time."""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import EPOCH, ChangeTimes, collection_keys
from .load.records import ParsedSeed
from .models import Article


def note_change(changes: ChangeTimes, article: Article, when: datetime) -> None:
    """Record that the collections of an article changed at `when` (keeping the latest)."""
    for key in collection_keys(article):
        if changes.get(key, EPOCH) < when:
            changes[key] = when


def file_time(seed: ParsedSeed) -> datetime:
    """When a seed file was last modified."""
    return datetime.fromtimestamp(seed.file.mtime_ns / 1e9, UTC)

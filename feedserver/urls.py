"""Where each collection's feeds and page live: one URL layout for the server, the static
export and WebSub notifications."""

from __future__ import annotations

from .catalog import ALL, PROVIDER, TOPIC, Collection

FEED_EXTENSIONS = ("rss", "atom", "json")
KIND_PATHS = {TOPIC: "topics", PROVIDER: "providers"}


def collection_path(collection: Collection) -> str:
    """The path a collection's feeds extend: `/feed`, `/topics/<slug>`, `/providers/<key>`."""
    if collection.kind == ALL:
        return "/feed"
    return f"/{KIND_PATHS[collection.kind]}/{collection.key}"


def feed_path(collection: Collection, extension: str) -> str:
    """The path of a collection's feed in one format."""
    return f"{collection_path(collection)}.{extension}"


def page_path(collection: Collection) -> str:
    """The path of a collection's HTML page (the home page for everything)."""
    return "/" if collection.kind == ALL else collection_path(collection)

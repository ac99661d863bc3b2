"""The entries a build's feeds show, rendered before its routes: one feedgen batch per
format for every entry the memo lacks costs far less than one batch per feed (feedgen's
setup and serialization are per call), and where there are two processes and many entries
each renders half, the child handing its pieces back through a pipe. The feeds then take
their entries from the memo (render._entry_pieces): the same bytes either way."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Sequence

from .catalog import Catalog, Collection
from .fragments import FragmentMemo
from .models import Article
from .render import keep, lacking, pieces, prerender
from .urls import Urls

logger = logging.getLogger(__name__)

# Below this many entries to render, a second process costs more than it saves.
PARALLEL_ENTRIES = 400


def shown(collections: Iterable[Collection], limit: int) -> list[Article]:
    """Every article the feeds of these collections show without a query: the first
    `limit` of each, each once."""
    found: dict[int, Article] = {}
    for collection in collections:
        for article in collection.articles[:limit]:
            found.setdefault(id(article), article)
    return list(found.values())


def render_ahead(
    articles: Sequence[Article],
    urls: Urls,
    catalog: Catalog,
    publisher: str,
    memo: FragmentMemo,
    workers: int,
) -> int:
    """Put the entries of these articles that the memo lacks in it; how many articles."""
    todo = lacking(articles, urls, catalog.names, memo)
    if workers < 2 or len(todo) < PARALLEL_ENTRIES:
        prerender(todo, urls, catalog.names, publisher, memo)
        return len(todo)
    mine, theirs = todo[0::2], todo[1::2]
    reader, writer = os.pipe()
    try:
        child = os.fork()
    except OSError as error:
        logger.warning("build: cannot fork a worker (%s); rendering in one process", error)
        os.close(reader)
        os.close(writer)
        prerender(todo, urls, catalog.names, publisher, memo)
        return len(todo)
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(reader)
            prerender(theirs, urls, catalog.names, publisher, memo)
            with os.fdopen(writer, "wb") as pipe:
                pickle.dump(pieces(theirs, urls, catalog.names, memo), pipe, protocol=5)
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    prerender(mine, urls, catalog.names, publisher, memo)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(child, 0)
    try:
        made = pickle.loads(data) if status == 0 else None
    except Exception:  # a truncated answer: the feeds render what is missing
        made = None
    if made is not None and len(made) == len(theirs):
        keep(theirs, made, urls, catalog.names, memo)
    else:
        logger.warning("build: a worker process failed (status %s) rendering entries", status)
    return len(todo)

"""How parsed seed files become catalog changes: which file's article a webUrl serves, what is
wrong with each file, and when the collections an article belongs to last changed.

The store applies these rules as files come and go; the catalog itself knows only articles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from .catalog import EPOCH, ChangeTimes, Problem, collection_keys
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


def choose_winner(candidates: Iterable[ParsedSeed]) -> tuple[ParsedSeed, list[Problem]]:
    """Of the files that share a webUrl, the most recently modified (then first by path)
    is served; the others are reported as duplicates."""
    ordered = sorted(candidates, key=lambda seed: (-seed.file.mtime_ns, seed.file.path))
    winner = ordered[0]
    assert winner.article is not None
    return winner, [
        Problem(
            seed.file.path,
            # No URL here: the winner may be unpublished, and its URL must not show.
            f"duplicate webUrl: the newer file {winner.file.path} takes its place",
            False,
        )
        for seed in ordered[1:]
    ]


def withheld_copies(failed: str, others: Iterable[str]) -> list[Problem]:
    """The other files of a webUrl whose failed takedown file still withholds it: a takedown
    that breaks never lets another copy of the article back in."""
    return [
        Problem(
            path,
            f"not served: {failed} holds the same webUrl, and withholds it while it fails "
            "without saying 'published: true'",
            False,
        )
        for path in sorted(others)
    ]


def seed_problems(seed: ParsedSeed) -> list[Problem]:
    """The error or warnings of one parsed file."""
    if seed.error is not None:
        return [Problem(seed.file.path, seed.error, True)]
    return [Problem(seed.file.path, warning, False) for warning in seed.warnings]

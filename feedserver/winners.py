"""Which file a webUrl serves when several hold it, and what the others are told."""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import Problem
from .load.records import ParsedSeed


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

"""One seed file's state across reloads: what it holds now, the last version that parsed,
and the fail-closed rule that decides which of them is served."""

from __future__ import annotations

from dataclasses import dataclass

from .load.records import ParsedSeed


@dataclass(frozen=True, slots=True)
class FileState:
    """What a reload knows of one seed file."""

    latest: ParsedSeed  # what the file holds now, maybe an error
    good: ParsedSeed | None  # the latest version that parsed, served while `latest` fails
    withheld: bool = False  # a published good version was dropped by the fail-closed rule
    # The webUrl of the good version that rule dropped (published or not): while the file
    # fails, no other file's copy of that article is served either (fail closed per URL).
    withheld_url: str | None = None

    @property
    def served(self) -> ParsedSeed:
        if self.latest.error is not None and self.good is not None:
            return self.good
        return self.latest

    @property
    def url(self) -> str | None:
        """The webUrl this file serves, or withholds; None when it has neither."""
        article = self.served.article
        return article.url if article is not None else self.withheld_url


# One file's state before a reload and after (None: not in the catalog).
Swap = tuple[FileState | None, FileState | None]


def next_state(state: FileState | None, result: ParsedSeed) -> FileState:
    """The state of a file after parsing it again. Fail closed: a version that cannot be
    used keeps the last good one served only while its raw text still says
    `published: true`; otherwise that version is dropped for good (a broken takedown edit
    must take the article down, not leave it up, and keep its URL down: see withheld_url)."""
    if result.error is None:
        return FileState(result, result)
    if state is None:
        return FileState(result, None)
    good = state.good
    if good is not None and result.still_published:
        return FileState(result, good)
    was_shown = good is not None and good.article is not None and good.article.published
    url = good.article.url if good is not None and good.article is not None else state.withheld_url
    return FileState(result, None, state.withheld or was_shown, url)

"""How article numbers move from one catalog to the next: the number each surviving article
takes among the next catalog's articles (positions, newest first), which old numbers went and
which new ones came, and bit sets and number lists renumbered with it. This is what lets the
search index follow a reload instead of being built again.

A reload usually edits articles in place (same date and URL: same position) or adds a few new
ones at the top, so the survivors move by one shift over long runs: a bit set is renumbered
by one shift per run rather than article by article.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import compress

from .models import Article

# Past this many runs of survivors that move by different shifts, a bit set is renumbered
# through its string of binary digits (each run costs a few passes over the whole set; the
# digits cost about as much as 300 runs, in C, whatever the runs).
MAX_RUNS = 64


class Renumbering:
    """The article numbers of `old` (a catalog's articles) in `new` (its successor's)."""

    def __init__(self, old: Sequence[Article], new: Sequence[Article]) -> None:
        position = {id(article): number for number, article in enumerate(new)}
        # Each survivor's new number; -1 for an article that went. What `position` keeps
        # after the pops is the articles that came.
        self.new_of = array("i", [position.pop(id(article), -1) for article in old])
        self.arrived = sorted(position.values())
        self.gone = [number for number, moved in enumerate(self.new_of) if moved < 0]
        self.old_size, self.new_size = len(old), len(new)
        self.gone_bits = _bits(self.gone, self.old_size)
        self._kept = bytes(moved >= 0 for moved in self.new_of)
        # Runs (first, past the last, shift) of old numbers whose survivors all move by the
        # same shift; a run may span numbers that went (their bits are cleared first).
        self.runs: list[tuple[int, int, int]] = []
        shift = None
        for number, moved in enumerate(self.new_of):
            if moved < 0:
                continue
            if moved - number != shift:
                shift = moved - number
                self.runs.append((number, number + 1, shift))
            else:
                self.runs[-1] = (self.runs[-1][0], number + 1, shift)
        self.identity = all(shift == 0 for _, _, shift in self.runs)

    def bits(self, bits: int, touched: bool) -> int:
        """A bit set of old numbers as one of new numbers, the articles that went left out
        (`touched`: the set may hold some of them; otherwise it holds none)."""
        if touched and self.gone:
            bits &= ~self.gone_bits
        if self.identity:
            return bits
        if len(self.runs) > MAX_RUNS:
            return self._through_digits(bits)
        moved = 0
        for first, past, shift in self.runs:
            moved |= ((bits >> first) & ((1 << (past - first)) - 1)) << (first + shift)
        return moved

    def _through_digits(self, bits: int) -> int:
        """Renumber a bit set (holding no article that went) as a string of binary digits,
        digit n for article n: keep the survivors' digits, put a 0 where each article came."""
        digits = format(bits, "b")[::-1].ljust(self.old_size, "0")
        kept = "".join(compress(digits, self._kept))
        pieces: list[str] = []
        last = 0
        for before, number in enumerate(self.arrived):
            upto = number - before  # survivors ahead of this newcomer
            pieces += (kept[last:upto], "0")
            last = upto
        pieces.append(kept[last:])
        return int("".join(pieces)[::-1] or "0", 2)

    def numbers(self, numbers: array[int], touched: bool) -> array[int]:
        """Ascending old numbers as new ones, the articles that went left out (`touched`
        as for `bits`); the very same array when nothing about it changes."""
        if self.identity and not (touched and self.gone):
            return numbers
        mapped = list(map(self.new_of.__getitem__, numbers))
        if touched and self.gone:
            return array("I", compress(mapped, [moved >= 0 for moved in mapped]))
        return array("I", mapped)


def _bits(numbers: Iterable[int], size: int) -> int:
    bits = bytearray((size + 7) // 8)
    for number in numbers:
        bits[number >> 3] |= 1 << (number & 7)
    return int.from_bytes(bits, "little")

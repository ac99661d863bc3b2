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
from itertools import compress, groupby, repeat
from operator import ge, not_, sub

from .models import Article

# Past this many runs of survivors that move by different shifts, a bit set is renumbered
# through its string of binary digits (each run costs a few passes over the whole set; the
# digits cost about as much as 300 runs, in C, whatever the runs).
MAX_RUNS = 64


class Renumbering:
    """The article numbers of `old` (a catalog's articles) in `new` (its successor's)."""

    def __init__(self, old: Sequence[Article], new: Sequence[Article]) -> None:
        # Done by C-level iterators: this runs over every article on every reload.
        position = dict(zip(map(id, new), range(len(new)), strict=True))
        # Each survivor's new number; -1 for an article that went. What `position` keeps
        # after the pops is the articles that came.
        self.new_of = array("i", map(position.pop, map(id, old), repeat(-1)))
        self.arrived = sorted(position.values())
        self.old_size, self.new_size = len(old), len(new)
        # One byte per old number: 1 when that article survives.
        self.kept = bytes(map(ge, self.new_of, repeat(0)))
        self.gone = list(compress(range(self.old_size), map(not_, self.kept)))
        self.gone_bits = _bits(self.gone, self.old_size)
        survivors = list(compress(range(self.old_size), self.kept))
        shifts = list(map(sub, compress(self.new_of, self.kept), survivors))
        self.identity = not any(shifts)
        # Runs (first, past the last, shift) of old numbers whose survivors all move by the
        # same shift, up to MAX_RUNS + 1 of them; a run may span numbers that went (their
        # bits are cleared first).
        self.runs: list[tuple[int, int, int]] = []
        if not self.identity:
            index = 0
            for shift, group in groupby(shifts):
                length = sum(1 for _ in group)
                first, index = survivors[index], index + length
                self.runs.append((first, survivors[index - 1] + 1, shift))
                if len(self.runs) > MAX_RUNS:
                    break

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
        kept = "".join(compress(digits, self.kept))
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
        kept: Iterable[int] = numbers
        if touched and self.gone:
            kept = compress(numbers, map(self.kept.__getitem__, numbers))
        elif self.identity:
            return numbers
        if self.identity:
            return array("I", kept)
        return array("I", map(self.new_of.__getitem__, kept))


def _bits(numbers: Iterable[int], size: int) -> int:
    bits = bytearray((size + 7) // 8)
    for number in numbers:
        bits[number >> 3] |= 1 << (number & 7)
    return int.from_bytes(bits, "little")

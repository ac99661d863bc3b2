"""The parts of a search index (search.py): the words of every article with their postings,
and the orders by heat and quality with the `min_quality` sets cut from them. Each part is
built whole from a catalog, or made from the part of the catalog before (a reload)."""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter

from .bitsets import bit_set, members
from .models import Article
from .renumber import Renumbering

# A token's posting is kept as a bit set once that is smaller than its list of numbers.
DENSE_SHARE = 32
# How many prefix bit sets of the quality order are kept, so that a `min_quality` set costs
# at most 1/_CHECKPOINTS of the articles to finish.
_CHECKPOINTS = 32


class Words:
    """Each distinct whitespace-separated token of the casefolded title and excerpt, with the
    articles that hold it; and all tokens in one string, to find those holding a piece."""

    def __init__(self, articles: Sequence[Article]) -> None:
        numbers: dict[str, int] = {}
        lists: list[array[int]] = []
        for number, article in enumerate(articles):
            for token in tokens_of(article):
                index = numbers.get(token)
                if index is None:
                    index = numbers[token] = len(lists)
                    lists.append(array("I"))
                lists[index].append(number)
        size = len(articles)
        self._set_tokens(list(numbers), size)
        self.counts = array("I", (len(found) for found in lists))
        self.postings: list[int | array[int]] = [
            bit_set(found, size) if len(found) * DENSE_SHARE >= size else found for found in lists
        ]

    def _set_tokens(self, tokens: list[str], size: int) -> None:
        self.size = size
        self.tokens = tokens
        self.text = "\n".join(tokens)  # tokens never hold "\n": it is whitespace
        self.starts = array("I")
        offset = 0
        for token in tokens:
            self.starts.append(offset)
            offset += len(token) + 1

    @classmethod
    def following(
        cls, old: Words, moves: Renumbering, before: Sequence[Article], after: Sequence[Article]
    ) -> Words:
        """The word index of `after`, made from that of `before`: every posting renumbered,
        the articles that went taken out of their tokens' postings, those that came put in."""
        gone: dict[int, list[int]] = {}  # token: old numbers that went
        came: dict[str, list[int]] = {}  # token: new numbers that came
        index_of = {token: index for index, token in enumerate(old.tokens)}
        for number in moves.gone:
            for token in tokens_of(before[number]):
                gone.setdefault(index_of[token], []).append(number)
        for number in moves.arrived:
            for token in tokens_of(after[number]):
                came.setdefault(token, []).append(number)
        size = moves.new_size
        tokens: list[str] = []
        counts: list[int] = []
        postings: list[int | array[int]] = []
        for index, token in enumerate(old.tokens):
            posting = old.postings[index]
            touched = index in gone
            count = old.counts[index] - len(gone.get(index, ()))
            added = came.pop(token, [])
            count += len(added)
            if not count:
                continue
            if isinstance(posting, int):
                posting = moves.bits(posting, touched)
            else:
                posting = moves.numbers(posting, touched)
            postings.append(make_posting(posting, added, count, size))
            tokens.append(token)
            counts.append(count)
        for token, added in came.items():  # tokens no article held before
            postings.append(make_posting(array("I"), added, len(added), size))
            tokens.append(token)
            counts.append(len(added))
        words = cls.__new__(cls)
        if tokens == old.tokens:
            words.size, words.tokens, words.text, words.starts = (
                size,
                old.tokens,
                old.text,
                old.starts,
            )
        else:
            words._set_tokens(tokens, size)
        words.counts = array("I", counts)
        words.postings = postings
        return words

    def tokens_holding(self, word: str) -> list[int]:
        """The tokens that hold `word` (which has no whitespace) anywhere in them."""
        found = []
        text, starts = self.text, self.starts
        position = text.find(word)
        while position >= 0:
            token = bisect_right(starts, position) - 1
            found.append(token)
            if token + 1 == len(starts):
                break
            position = text.find(word, starts[token + 1])
        return found

    def union(self, tokens: list[int]) -> int:
        """The bit set of the articles that hold any of the tokens."""
        bits = 0
        sparse: bytearray | None = None
        for token in tokens:
            posting = self.postings[token]
            if isinstance(posting, int):
                bits |= posting
                continue
            if sparse is None:
                sparse = bytearray((self.size + 7) // 8)
            for number in posting:
                sparse[number >> 3] |= 1 << (number & 7)
        if sparse is not None:
            bits |= int.from_bytes(sparse, "little")
        return bits

    def nbytes(self) -> int:
        """Bytes held, roughly: the containers and what they hold."""
        return (
            sys.getsizeof(self.text)
            + sys.getsizeof(self.starts)
            + sys.getsizeof(self.counts)
            + sys.getsizeof(self.postings)
            + sum(sys.getsizeof(posting) for posting in self.postings)
        )


def tokens_of(article: Article) -> set[str]:
    """The distinct tokens of an article: of the very text FeedQuery.matches searches (a
    query word has no whitespace, so it occurs in this text exactly when it occurs in one of
    its tokens)."""
    return set(f"{article.title}\n{article.excerpt}".casefold().split())


def make_posting(
    posting: int | array[int], added: list[int], count: int, size: int
) -> int | array[int]:
    """A renumbered posting with the articles that came (`added`, ascending) put in, in the
    form a fresh build gives a posting of `count` articles out of `size`."""
    dense = count * DENSE_SHARE >= size
    if isinstance(posting, int):
        if added:
            posting |= bit_set(added, size)
        return posting if dense else array("I", members(posting, size))
    if added:
        merged = list(posting)
        merged += added
        merged.sort()
        posting = array("I", merged)
    return bit_set(posting, size) if dense else posting


class Order:
    """Article numbers sorted by heat or quality, highest first, articles without a value
    last, ties by date then URL: the order `sort=` asks for."""

    def __init__(self, articles: Sequence[Article], field: str) -> None:
        values = [getattr(article, field) for article in articles]
        keys = [-value if value is not None else math.inf for value in values]
        # A stable sort of numbers already in date-then-URL order breaks ties that way.
        self.order = array("I", sorted(range(len(articles)), key=keys.__getitem__))
        self.rank = array("I", [0]) * len(articles)
        for position, number in enumerate(self.order):
            self.rank[number] = position
        self.keys = array("d", (keys[number] for number in self.order))

    @classmethod
    def following(
        cls, old: Order, moves: Renumbering, after: Sequence[Article], field: str
    ) -> Order:
        """The order of `after`, made from that of the articles before: the survivors keep
        their order (renumbering keeps ties in date order), the articles that came are put
        in at their places."""
        kept = bytes(map(moves.kept.__getitem__, old.order))
        order = moves.numbers(old.order, True)  # stays in this order: renumbering is monotone
        if order is old.order:
            order = array("I", order)  # never change the old index
        keys = array("d", compress(old.keys, kept))
        value_of = attrgetter(field)
        for number in moves.arrived:
            value = value_of(after[number])
            key = -value if value is not None else math.inf
            # Among equal keys, numbers ascend: find the tie block, then the place in it.
            low, high = bisect_left(keys, key), bisect_right(keys, key)
            place = bisect_left(order, number, low, high)
            order.insert(place, number)
            keys.insert(place, key)
        made = cls.__new__(cls)
        made.order, made.keys = order, keys
        made.rank = array("I", [0]) * len(order)
        for position, number in enumerate(order):
            made.rank[number] = position
        return made

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(sys.getsizeof(part) for part in (self.order, self.rank, self.keys))


class AtLeast:
    """Bit sets of the articles whose value is at least a threshold: prefixes of an order,
    with every 1/_CHECKPOINTS-th prefix kept ready."""

    def __init__(self, order: Order) -> None:
        self.order = order
        size = len(order.order)
        self.step = max(1, math.ceil(size / _CHECKPOINTS))
        self.prefixes = [0]
        bits = bytearray((size + 7) // 8)
        for position, number in enumerate(order.order, 1):
            bits[number >> 3] |= 1 << (number & 7)
            if position % self.step == 0:
                self.prefixes.append(int.from_bytes(bits, "little"))

    def bits(self, threshold: float) -> int:
        """The articles whose value is at least `threshold`."""
        count = bisect_right(self.order.keys, -threshold)
        ready = count // self.step
        rest = self.order.order[ready * self.step : count]
        return self.prefixes[ready] | bit_set(rest, len(self.order.order))

    def nbytes(self) -> int:
        """Bytes held (the order is counted on its own)."""
        return sys.getsizeof(self.prefixes) + sum(sys.getsizeof(p) for p in self.prefixes)

"""The search index of one catalog: which articles hold a query's words, which pass a
`min_quality`, and in what order they sort by heat or quality, so that a filtered feed costs
what it returns instead of a scan of its whole collection.

Articles are numbered by their position in the catalog's all-articles collection (newest
first, ties by URL: the order of every collection), and a set of articles is a Python int
used as a bit set, so that intersecting and counting tens of thousands of articles takes
microseconds. Each part is built on its first use and kept for the catalog's life (a catalog
never changes); `prepare()` builds them all ahead of the first request.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence

from .models import Article

CollectionKey = tuple[str, str]
# A token's posting is kept as a bit set once that is smaller than its list of numbers.
_DENSE_SHARE = 32
# How many prefix bit sets of the quality order are kept, so that a `min_quality` set costs
# at most 1/_CHECKPOINTS of the articles to finish.
_CHECKPOINTS = 32
_BITS_OF_BYTE = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))
_NONZERO_BYTE = re.compile(rb"[^\x00]")


def bit_set(numbers: Iterable[int], size: int) -> int:
    """The bit set of article numbers below `size`."""
    bits = bytearray((size + 7) // 8)
    for number in numbers:
        bits[number >> 3] |= 1 << (number & 7)
    return int.from_bytes(bits, "little")


def members(bits: int, size: int, skip: int = 0) -> Iterator[int]:
    """The numbers in a bit set, ascending, after the first `skip` of them."""
    if skip:
        # Find the skip-th member by counting bits below a point, halving the range each time.
        low, high = 0, size
        while low < high:
            middle = (low + high) // 2
            if (bits & ((1 << (middle + 1)) - 1)).bit_count() >= skip:
                high = middle
            else:
                low = middle + 1
        base = low + 1
        bits >>= base
    else:
        base = 0
    data = bits.to_bytes((max(size - base, 0) + 7) // 8 or 1, "little")
    for found in _NONZERO_BYTE.finditer(data):
        offset = found.start()
        start = base + offset * 8
        for bit in _BITS_OF_BYTE[data[offset]]:
            yield start + bit


class _Words:
    """Each distinct whitespace-separated token of the casefolded title and excerpt, with the
    articles that hold it; and all tokens in one string, to find those holding a piece."""

    def __init__(self, articles: Sequence[Article]) -> None:
        numbers: dict[str, int] = {}
        lists: list[array[int]] = []
        for number, article in enumerate(articles):
            # The very text FeedQuery.matches searches: a query word has no whitespace, so it
            # occurs in this text exactly when it occurs in one of its tokens.
            text = f"{article.title}\n{article.excerpt}".casefold()
            for token in set(text.split()):
                index = numbers.get(token)
                if index is None:
                    index = numbers[token] = len(lists)
                    lists.append(array("I"))
                lists[index].append(number)
        size = len(articles)
        self.size = size
        self.text = "\n".join(numbers)  # tokens never hold "\n": it is whitespace
        self.starts = array("I")
        offset = 0
        for token in numbers:
            self.starts.append(offset)
            offset += len(token) + 1
        self.counts = array("I", (len(found) for found in lists))
        self.postings: list[int | array[int]] = [
            bit_set(found, size) if len(found) * _DENSE_SHARE >= size else found for found in lists
        ]

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


class _Order:
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

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(sys.getsizeof(part) for part in (self.order, self.rank, self.keys))


class _AtLeast:
    """Bit sets of the articles whose value is at least a threshold: prefixes of an order,
    with every 1/_CHECKPOINTS-th prefix kept ready."""

    def __init__(self, order: _Order) -> None:
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


class SearchIndex:
    """The lazily built search structures of one catalog's articles."""

    def __init__(
        self,
        articles: tuple[Article, ...],
        collection_keys: Callable[[Article], Iterable[CollectionKey]],
    ) -> None:
        self.articles = articles
        self._collection_keys = collection_keys
        self._all = (1 << len(articles)) - 1
        # Each part is built once, then assigned in one step: two requests may build the
        # same part at the same time, and either result is whole and the same.
        self._words: _Words | None = None
        self._members: dict[CollectionKey, array[int]] | None = None
        self._dense_collections: dict[CollectionKey, int] = {}
        self._orders: dict[str, _Order] = {}
        self._at_least: _AtLeast | None = None

    def words(self) -> _Words:
        """The word index, built on first use."""
        words = self._words
        if words is None:
            words = self._words = _Words(self.articles)
        return words

    def order(self, field: str) -> _Order:
        """The order by heat or quality, built on first use."""
        order = self._orders.get(field)
        if order is None:
            order = self._orders[field] = _Order(self.articles, field)
        return order

    def at_least(self) -> _AtLeast:
        """The `min_quality` prefixes, built on first use."""
        at_least = self._at_least
        if at_least is None:
            at_least = self._at_least = _AtLeast(self.order("quality"))
        return at_least

    def _collection_members(self) -> dict[CollectionKey, array[int]]:
        found = self._members
        if found is None:
            found = {}
            for number, article in enumerate(self.articles):
                for key in self._collection_keys(article):
                    numbers = found.get(key)
                    if numbers is None:
                        numbers = found[key] = array("I")
                    numbers.append(number)
            self._members = found
        return found

    @property
    def ready(self) -> bool:
        """Whether every part is built."""
        return (
            self._words is not None
            and self._members is not None
            and self._at_least is not None
            and "heat" in self._orders
        )

    def prepare(self) -> None:
        """Build every part now, so that no request waits for one."""
        self.words()
        self.order("heat")
        self.at_least()
        self._collection_members()

    def _collection_bits(self, key: CollectionKey, articles: Sequence[Article]) -> int | None:
        """The bit set of a collection of this catalog, or None when `articles` is not one."""
        if articles is self.articles:
            return self._all
        numbers = self._collection_members().get(key)
        if (
            numbers is None
            or len(numbers) != len(articles)
            or self.articles[numbers[0]] is not articles[0]
            or self.articles[numbers[-1]] is not articles[-1]
        ):
            return None
        return self._bits_of(key, numbers)

    def bits_of(self, key: CollectionKey) -> int:
        """The bit set of the collection `key` names (no member when it is not served)."""
        numbers = self._collection_members().get(key)
        return self._bits_of(key, numbers) if numbers is not None else 0

    def everything(self) -> int:
        """The bit set of every article."""
        return self._all

    def articles_in(self, bits: int) -> tuple[Article, ...]:
        """The articles of a bit set, newest first (the order of every collection)."""
        articles = self.articles
        return tuple(articles[number] for number in members(bits, len(articles)))

    def _bits_of(self, key: CollectionKey, numbers: array[int]) -> int:
        bits = self._dense_collections.get(key)
        if bits is None:
            bits = bit_set(numbers, len(self.articles))
            # Kept only for big collections: at most _DENSE_SHARE per article's collection.
            if len(numbers) * _DENSE_SHARE >= len(self.articles):
                self._dense_collections[key] = bits
        return bits

    def _word_bits(self, words: Sequence[str]) -> int:
        """The articles whose text holds every word, smallest posting first."""
        index = self.words()
        found = [(word, index.tokens_holding(word)) for word in words if word]
        found.sort(key=lambda pair: sum(index.counts[token] for token in pair[1]))
        bits = self._all
        for _, tokens in found:
            bits &= index.union(tokens)
            if not bits:
                break
        return bits

    def select(
        self,
        key: CollectionKey,
        articles: Sequence[Article],
        words: Sequence[str],
        min_quality: float | None,
        sort: str,
        start: int,
        stop: int,
    ) -> tuple[list[Article], int] | None:
        """The articles `start:stop` of a collection that hold every word and reach
        `min_quality`, in `sort` order, and how many match in all; None when `articles`
        is not a collection of this catalog."""
        chosen = self._collection_bits(key, articles)
        if chosen is None:
            return None
        if chosen and min_quality is not None:
            chosen &= self.at_least().bits(min_quality)
        if chosen and words:
            chosen &= self._word_bits(words)
        count = chosen.bit_count()
        size = len(self.articles)
        if start >= count:
            return [], count
        if sort == "date":
            numbers = members(chosen, size, start)
            picked = [number for number, _ in zip(numbers, range(stop - start), strict=False)]
        else:
            picked = self._sorted(chosen, count, self.order(sort), start, min(stop, count))
        return [self.articles[number] for number in picked], count

    def _sorted(self, chosen: int, count: int, order: _Order, start: int, stop: int) -> list[int]:
        """Members `start:stop` of a bit set in an order: by walking the order while the
        set is dense in it, else by sorting the set's members."""
        size = len(self.articles)
        walk = stop * size / count
        if walk > 4 * count:
            return sorted(members(chosen, size), key=order.rank.__getitem__)[start:stop]
        data = chosen.to_bytes((size + 7) // 8 or 1, "little")
        picked: list[int] = []
        seen = 0
        for number in order.order:
            if data[number >> 3] >> (number & 7) & 1:
                if seen >= start:
                    picked.append(number)
                seen += 1
                if seen == stop:
                    break
        return picked

    def nbytes(self) -> int:
        """Bytes held by the parts built so far, roughly (what an operator sizes memory by)."""
        total = sys.getsizeof(self._all)
        if self._words is not None:
            total += self._words.nbytes()
        if self._members is not None:
            total += sys.getsizeof(self._members)
            total += sum(sys.getsizeof(numbers) for numbers in self._members.values())
        total += sum(sys.getsizeof(bits) for bits in self._dense_collections.values())
        total += sum(order.nbytes() for order in self._orders.values())
        if self._at_least is not None:
            total += self._at_least.nbytes()
        return total

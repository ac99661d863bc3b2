"""The search index of one catalog: which articles hold a query's words, which pass a
`min_quality`, and in what order they sort by heat or quality, so that a filtered feed costs
what it returns instead of a scan of its whole collection.

Articles are numbered by their position in the catalog's all-articles collection (newest
first, ties by URL: the order of every collection), and a set of articles is a Python int
used as a bit set, so that intersecting and counting tens of thousands of articles takes
microseconds. Each part is built on its first use and kept for the catalog's life (a catalog
never changes); `prepare()` builds them all ahead of the first request. The index of a
catalog that follows another (a reload) is made from the whole index of the one before:
its postings, orders and members renumbered (see renumber.py), and only the articles that
went or came taken out or put in, instead of reading every article again.
"""

from __future__ import annotations

import sys
from array import array
from bisect import insort
from collections.abc import Callable, Iterable, Sequence

from .bitsets import bit_set, members
from .models import Article
from .renumber import Renumbering
from .search_parts import DENSE_SHARE, AtLeast, Order, Words

CollectionKey = tuple[str, str]


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
        self._words: Words | None = None
        self._members: dict[CollectionKey, array[int]] | None = None
        self._dense_collections: dict[CollectionKey, int] = {}
        self._orders: dict[str, Order] = {}
        self._at_least: AtLeast | None = None
        # The whole index of the catalog before this one, until this one is made from it.
        self._previous: SearchIndex | None = None

    def follow(self, previous: SearchIndex) -> None:
        """Make this index, when first used, from `previous` (the index of the catalog this
        one's catalog replaces) if that one is whole by then; else build it afresh."""
        if previous.ready:
            self._previous = previous

    def _inherit(self) -> None:
        """Make every part from the previous index, once (two callers at the same time each
        make whole parts, the same; either result is kept)."""
        previous = self._previous
        if previous is None:
            return
        before, after = previous.articles, self.articles
        moves = Renumbering(before, after)
        old_words, old_members = previous._words, previous._members
        if old_words is None or old_members is None:
            self._previous = None
            return
        words = Words.following(old_words, moves, before, after)
        orders = {
            field: Order.following(order, moves, after, field)
            for field, order in previous._orders.items()
        }
        found = self._members_following(old_members, moves, before)
        if self._words is None:
            self._words = words
        for field, order in orders.items():
            self._orders.setdefault(field, order)
        if self._members is None:
            self._members = found
        self._previous = None

    def _members_following(
        self,
        old: dict[CollectionKey, array[int]],
        moves: Renumbering,
        before: Sequence[Article],
    ) -> dict[CollectionKey, array[int]]:
        """Each collection's members renumbered, those that went out, those that came in."""
        touched = {key for number in moves.gone for key in self._collection_keys(before[number])}
        found = {key: moves.numbers(numbers, key in touched) for key, numbers in old.items()}
        for number in moves.arrived:
            for key in self._collection_keys(self.articles[number]):
                numbers = found.get(key)
                if numbers is None:
                    numbers = found[key] = array("I")
                elif numbers is old.get(key):
                    numbers = found[key] = array("I", numbers)  # never change the old one
                insort(numbers, number)
        return {key: numbers for key, numbers in found.items() if numbers}

    def words(self) -> Words:
        """The word index, built on first use."""
        if self._previous is not None:
            self._inherit()
        words = self._words
        if words is None:
            words = self._words = Words(self.articles)
        return words

    def order(self, field: str) -> Order:
        """The order by heat or quality, built on first use."""
        if self._previous is not None:
            self._inherit()
        order = self._orders.get(field)
        if order is None:
            order = self._orders[field] = Order(self.articles, field)
        return order

    def at_least(self) -> AtLeast:
        """The `min_quality` prefixes, built on first use."""
        at_least = self._at_least
        if at_least is None:
            at_least = self._at_least = AtLeast(self.order("quality"))
        return at_least

    def _collection_members(self) -> dict[CollectionKey, array[int]]:
        if self._previous is not None:
            self._inherit()
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
            # Kept only for big collections: at most DENSE_SHARE per article's collection.
            if len(numbers) * DENSE_SHARE >= len(self.articles):
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

    def _sorted(self, chosen: int, count: int, order: Order, start: int, stop: int) -> list[int]:
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

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

import math
import re
import sys
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress
from operator import attrgetter

from .models import Article
from .renumber import Renumbering

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
            for token in _tokens(article):
                index = numbers.get(token)
                if index is None:
                    index = numbers[token] = len(lists)
                    lists.append(array("I"))
                lists[index].append(number)
        size = len(articles)
        self._set_tokens(list(numbers), size)
        self.counts = array("I", (len(found) for found in lists))
        self.postings: list[int | array[int]] = [
            bit_set(found, size) if len(found) * _DENSE_SHARE >= size else found for found in lists
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
        cls, old: _Words, moves: Renumbering, before: Sequence[Article], after: Sequence[Article]
    ) -> _Words:
        """The word index of `after`, made from that of `before`: every posting renumbered,
        the articles that went taken out of their tokens' postings, those that came put in."""
        gone: dict[int, list[int]] = {}  # token: old numbers that went
        came: dict[str, list[int]] = {}  # token: new numbers that came
        index_of = {token: index for index, token in enumerate(old.tokens)}
        for number in moves.gone:
            for token in _tokens(before[number]):
                gone.setdefault(index_of[token], []).append(number)
        for number in moves.arrived:
            for token in _tokens(after[number]):
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
            postings.append(_posting(posting, added, count, size))
            tokens.append(token)
            counts.append(count)
        for token, added in came.items():  # tokens no article held before
            postings.append(_posting(array("I"), added, len(added), size))
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


def _tokens(article: Article) -> set[str]:
    """The distinct tokens of an article: of the very text FeedQuery.matches searches (a
    query word has no whitespace, so it occurs in this text exactly when it occurs in one of
    its tokens)."""
    return set(f"{article.title}\n{article.excerpt}".casefold().split())


def _posting(
    posting: int | array[int], added: list[int], count: int, size: int
) -> int | array[int]:
    """A renumbered posting with the articles that came (`added`, ascending) put in, in the
    form a fresh build gives a posting of `count` articles out of `size`."""
    dense = count * _DENSE_SHARE >= size
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

    @classmethod
    def following(
        cls, old: _Order, moves: Renumbering, after: Sequence[Article], field: str
    ) -> _Order:
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
        words = _Words.following(old_words, moves, before, after)
        orders = {
            field: _Order.following(order, moves, after, field)
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

    def words(self) -> _Words:
        """The word index, built on first use."""
        if self._previous is not None:
            self._inherit()
        words = self._words
        if words is None:
            words = self._words = _Words(self.articles)
        return words

    def order(self, field: str) -> _Order:
        """The order by heat or quality, built on first use."""
        if self._previous is not None:
            self._inherit()
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

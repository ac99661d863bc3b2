"""Sets of article numbers as Python ints, one bit an article: intersecting and counting
tens of thousands of articles takes microseconds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

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

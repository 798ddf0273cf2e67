"""The venues' published book checksums, over a book's top levels as the venue spelled
them (text), best first per side.

- OKX v5 (`books`, `books-l2-tbt`, ...) and Bitget `books`: CRC32 of "bid1px:bid1sz:ask1px:ask1sz:..." over
  the top 25 levels, bid and ask interleaved (a shorter side just stops contributing),
  compared as a signed 32-bit integer.
- Kraken `book` (v1 strings; v2 JSON numbers as the wire spelled them, at the instrument's
  full precision: books/kraken.py keeps that text): CRC32 of the top 10 asks (low to high)
  then the top 10 bids (high to low), each level as price + qty with the '.' removed and
  leading zeros stripped, compared unsigned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from itertools import chain

Levels = Sequence[tuple[str, str]]  # (price text, size text), best first


def okx(bids: Levels, asks: Levels) -> int:
    try:
        bid_text, ask_text = list(map(":".join, bids)), list(map(":".join, asks))
    except TypeError:  # JSON numbers: as text
        bid_text = [f"{p}:{s}" for p, s in bids]
        ask_text = [f"{p}:{s}" for p, s in asks]
    # bid and ask interleaved level by level; the longer side's rest follows
    both = min(len(bid_text), len(ask_text))
    parts = list(chain.from_iterable(zip(bid_text, ask_text, strict=False)))
    parts += bid_text[both:] or ask_text[both:]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _kraken_text(levels: Levels) -> str:
    return "".join(str(p).replace(".", "").lstrip("0") + str(s).replace(".", "").lstrip("0")
                   for p, s in levels)


def kraken(bids: Levels, asks: Levels) -> int:
    return zlib.crc32((_kraken_text(asks) + _kraken_text(bids)).encode())


# venue -> (levels per side the checksum covers, function)
CHECKSUMS: dict[str, tuple[int, Callable[[Levels, Levels], int]]] = {
    "okx": (25, okx),
    "bitget": (25, okx),  # Bitget documents OKX's algorithm for its `books` channel
    "kraken": (10, kraken),
}

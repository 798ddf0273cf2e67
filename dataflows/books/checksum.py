"""The venues' published book checksums, over a book's top levels as the venue spelled
them (text), best first per side.

- OKX v5 (`books`, `books-l2-tbt`, ...) and Bitget `books`: CRC32 of "bid1px:bid1sz:ask1px:ask1sz:..." over
  the top 25 levels, bid and ask interleaved (a shorter side just stops contributing),
  compared as a signed 32-bit integer.
- Kraken v1 `book` (and v2 with the instrument's precision): CRC32 of the top 10 asks (low
  to high) then the top 10 bids (high to low), each level as price + qty with the '.'
  removed and leading zeros stripped, compared unsigned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

Levels = Sequence[tuple[str, str]]  # (price text, size text), best first


def okx(bids: Levels, asks: Levels) -> int:
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    if any(part.__class__ is not str for part in parts):  # JSON numbers: as text
        parts = [str(part) for part in parts]
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

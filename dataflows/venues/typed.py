"""Typed decoding for the venues' trade fast paths: `fast_many` (the batch parse a venue
declares with `fast=`) and msgspec structs that hold only the fields the per-frame `parse`
reads, decoded in C, prices and sizes included.

The decoders are lax (`strict=False`) so a price or size sent as a decimal string ("0.3528")
arrives as a float without a Python `float()` per field. Lax decoding would also turn "7"
into 7 or "true" into True, which `parse` refuses, so every field whose JSON type matters is
declared as a union that keeps the other JSON types as they are (`Int`, `Flag`) and the fast
path checks the class (`value.__class__ is int`, `flag is True`): a frame `parse` refuses is
never taken. A float field accepts only what Python's float() accepts too, with the same
value (correctly rounded both); NaN, infinities and 0 are left to `parse` by the range check.

Unknown fields are skipped (still validated as JSON): `parse` ignores them too. Structs are
not tracked by the garbage collector (`gc=False`: they hold no references back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec

from dataflows.venues.base import BatchResult

# orjson decodes an integer beyond 64 bits as a float (which `parse` rejects where an
# integer belongs), so the fast decoders must reject those too; msgspec bounds stop at
# int64, so ids in (2**63, 2**64) take the per-frame path (same result, just slower).
OrjsonInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

# A JSON integer where `parse` wants one (int64, as orjson reads it); a string, float or
# bigger integer stays what it is (str / float) or fails, so `__class__ is int` tells.
Int = OrjsonInt | float | str
# A JSON boolean where `parse` wants one; lax decoding would read "true" or 1 as True.
Flag = bool | OrjsonInt | float | str


def struct(name: str, fields: list, **options) -> type:
    """A msgspec Struct type of `fields` ([(name, type[, default]), ...]), untracked by GC."""
    return msgspec.defstruct(name, fields, gc=False, **options)


def decoder(kind: object) -> Callable[[str | bytes], object]:
    """The lax typed decode of `kind` (a struct, or a union of tagged structs)."""
    return msgspec.json.Decoder(kind, strict=False).decode


def fast_many(parse, marker: str, fast):
    """A `parse_many` that tries `fast(frame, received_ts, trades)` on frames holding
    `marker` and uses the per-frame `parse` for every other frame.

    `fast` decodes with a typed msgspec decoder, appends the frame's trades and returns
    how many (0: not a frame it handles). It must accept only frames `parse` turns into
    exactly those trades (safe_parse's checks included); on 0 or any exception its
    partial output is dropped and the frame goes through `parse`, so ignored/invalid
    outcomes stay those of `parse`. Binary frames take it only when ASCII: a typed decoder
    skips the fields it does not declare without checking their UTF-8 (dataflows/venues/typed.py).
    """

    marker_bytes = marker.encode()

    def parse_many(messages) -> BatchResult:
        out = BatchResult()
        trades, counts = out.trades, out.counts
        for i, (received_ts, frame) in enumerate(messages):
            if marker in frame if frame.__class__ is str else (
                    marker_bytes in frame and frame.isascii()):
                start = len(trades)
                try:
                    n = fast(frame, received_ts, trades)
                except Exception:  # noqa: BLE001 - parse decides what is wrong
                    n = 0
                if n:
                    counts.append(n)
                    continue
                del trades[start:]
            out.add(i, parse(frame, received_ts))
        return out

    return parse_many

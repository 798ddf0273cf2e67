"""Typed decoding for the venues' trade fast paths: `fast_many` (the batch parse a venue
declares with `fast=`) and msgspec structs that hold only the fields the per-frame `parse`
reads, decoded in C, prices and sizes included. A venue's `build` then makes the batch's
trade columns in one pass per field (checked.py: a refused row sends its frame to
`parse`), never a `Trade` per row (dataflows/parse/trade_columns.py).

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

import contextlib
from collections.abc import Callable
from typing import Annotated

import msgspec
import numpy as np

from dataflows.parse._fast_path import split
from dataflows.parse.trade_columns import TradeColumns
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


# (decoded structs, their frames' received_ts: int64 array or list) -> (trade columns of
# the frames taken, trades per frame: 0 = refused, `parse` decides)
Build = Callable[[list, list[int]], tuple[TradeColumns, list[int]]]


def fast_many(parse, marker: str, decode: Callable, build: Build):
    """A `parse_many` that decodes the frames holding `marker` with `decode` (a typed
    msgspec decoder, raising on any other frame), makes their trades with `build` and
    uses the per-frame `parse` for every other frame. The batch's frames are first
    decoded in one `map` up to the first one `decode` refuses (all trades: the whole
    batch), then one by one with `marker` as a cheap filter; a frame `decode` takes is
    a trade frame either way (the marker only saves failing decodes).

    `build` must accept only frames `parse` turns into exactly those trades (safe_parse's
    checks included); a frame it refuses goes through `parse`, so ignored/invalid
    outcomes stay those of `parse` and the trades keep the frames' order. Binary frames
    take it only when ASCII: a typed decoder skips the fields it does not declare without
    checking their UTF-8 (dataflows/venues/typed.py).
    """

    marker_bytes = marker.encode()

    def parse_many(messages) -> BatchResult:
        decoded: list = []
        slow: list[int] = []
        received_all, frames, text = split(messages)  # in C, one pass
        if text:  # in one C loop up to the first frame it refuses (a quote, ...)
            with contextlib.suppress(Exception):
                decoded.extend(map(decode, frames))
        received = np.frombuffer(received_all, np.int64)
        if len(decoded) < len(frames):  # the rest one by one; their times appended
            received = received[:len(decoded)].tolist()
            for i, (received_ts, frame) in enumerate(messages[len(decoded):], len(decoded)):
                if marker in frame if frame.__class__ is str else (
                        marker_bytes in frame and frame.isascii()):
                    try:
                        decoded.append(decode(frame))
                        received.append(received_ts)
                        continue
                    except Exception:  # noqa: BLE001, S112 - parse decides what is wrong
                        pass
                slow.append(i)
        try:
            trades, counts = build(decoded, received) if decoded else (TradeColumns.empty(), [])
        except Exception:  # noqa: BLE001 - a value `build` did not foresee: parse decides
            trades, counts = TradeColumns.empty(), [0] * len(decoded)
        if not slow and 0 not in counts:
            return BatchResult(trades, counts=counts)
        return _with_slow_frames(parse, messages, slow, trades, counts)

    return parse_many


def _with_slow_frames(parse, messages, slow: list[int], trades: TradeColumns,
                      counts: list[int]) -> BatchResult:
    """The frames the fast path did not take, through `parse`; every trade in frame order."""
    out = BatchResult(counts=[0] * len(messages))
    skip = set(slow)
    fast_at = [i for i in range(len(messages)) if i not in skip]
    for i, n in zip(fast_at, counts, strict=True):
        if n:
            out.counts[i] = n
        else:
            slow.append(i)
    rows: list = []
    rows_at: list[int] = []
    for i in sorted(slow):
        received_ts, frame = messages[i]
        found = out.record(i, parse(frame, received_ts))
        rows += found
        rows_at += [i] * len(found)
    if not rows:
        out.trades = trades
        return out
    taken = [i for i, n in zip(fast_at, counts, strict=True) for _ in range(n)]
    order = np.argsort(np.array(taken + rows_at, dtype=np.int64), kind="stable")
    out.trades = TradeColumns.concat([trades, rows]).take(order)
    return out

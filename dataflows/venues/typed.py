"""Typed decoding for the venues' trade fast paths: `fast_many` (the batch parse a venue
declares with `fast=`) and msgspec structs that hold only the fields the per-frame `parse`
reads, decoded in C, prices and sizes included. A venue's `build` then makes the batch's
trade columns in one pass per field (the checks below: a refused row sends its frame to
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

from array import array
from collections.abc import Callable
from typing import Annotated

import msgspec
import numpy as np

from dataflows.parse.trade_columns import TradeColumns, trade_columns
from dataflows.venues.base import BatchResult
from dataflows.venues.instruments import Spec

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


# (decoded structs, their frames' received_ts) -> (trade columns of the frames taken,
# trades per frame: 0 = refused, `parse` decides)
Build = Callable[[list, list[int]], tuple[TradeColumns, list[int]]]


def fast_many(parse, marker: str, decode: Callable, build: Build):
    """A `parse_many` that decodes the frames holding `marker` with `decode` (a typed
    msgspec decoder, raising on any other frame), makes their trades with `build` and
    uses the per-frame `parse` for every other frame.

    `build` must accept only frames `parse` turns into exactly those trades (safe_parse's
    checks included); a frame it refuses goes through `parse`, so ignored/invalid
    outcomes stay those of `parse` and the trades keep the frames' order. Binary frames
    take it only when ASCII: a typed decoder skips the fields it does not declare without
    checking their UTF-8 (dataflows/venues/typed.py).
    """

    marker_bytes = marker.encode()

    def parse_many(messages) -> BatchResult:
        decoded: list = []
        received: list[int] = []
        slow: list[int] = []
        for i, (received_ts, frame) in enumerate(messages):
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


# --- checks of decoded values, a whole column at once ----------------------------------
# Each marks the rows it refuses in `ok` (bool per row); the common all-good column costs
# one C pass (`set(map(type, ...))`), the per-row check runs only on a column that fails it.

def fields(prices: list, sizes: list, ids: list, sides: list, table: dict,
           side_kind: type = str, int_ids: bool = True) -> tuple:
    """(ok, prices, sizes, ids, sides) of a batch's decoded trades (the venue reads each
    field in a list comprehension: attrgetter took twice as long), checked as `parse`
    checks them: `positive`, ids JSON integers unless `int_ids` is False, `mapped`."""
    ok = np.ones(len(prices), dtype=bool)
    prices, sizes = positive(prices, ok), positive(sizes, ok)
    if int_ids:
        _only_ints(ids, ok)
    return ok, prices, sizes, ids, mapped(sides, table, ok, side_kind)


def _only_ints(values: list, ok: np.ndarray) -> bool:
    """Whether every value is a JSON integer; the others refuse their rows."""
    if set(map(type, values)) <= {int}:
        return True
    ok &= [v.__class__ is int for v in values]
    return False


def ints(values: list, ok: np.ndarray) -> np.ndarray:
    """JSON integers (`Int` fields) as int64; anything else (str, float) refuses its row."""
    if _only_ints(values, ok):
        return np.frombuffer(array("q", values), dtype=np.int64)
    return np.array([v if v.__class__ is int else 0 for v in values], dtype=np.int64)


def positive(values: list[float], ok: np.ndarray) -> np.ndarray:
    """Prices and sizes: only finite values > 0 (common.check_trade) keep their row."""
    column = np.array(values, dtype=np.float64)
    ok &= (column > 0.0) & (column < np.inf)
    return column


def digits(values: list[str], ok: np.ndarray, low: int, high: int) -> np.ndarray:
    """Times sent as digit text (`str.isdigit`, then `int`, as `parse` reads them) within
    [low, high) as int64; anything else refuses its row."""
    column = _same_width_digits(values)
    if column is None:
        column = np.array([_digits(v) for v in values], dtype=np.int64)
    ok &= (column >= low) & (column < high)
    return column


def _same_width_digits(values: list[str]) -> np.ndarray | None:
    """The usual column (ASCII digits, all of one width <= 18: fits int64) read in numpy:
    the bytes of the joined text as a matrix of digits; None for any other column."""
    if not values or len(set(map(len, values))) != 1 or not 0 < len(values[0]) <= 18:
        return None
    text = "".join(values)
    if not text.isascii():
        return None
    digits = (np.frombuffer(text.encode(), dtype=np.uint8) - 48).reshape(len(values), -1)
    if (digits > 9).any():  # below "0" wraps around too
        return None
    powers = 10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits.astype(np.int64) @ powers


def _digits(text: str) -> int:
    try:
        value = int(text) if text.isdigit() else -1
    except ValueError:  # digits int() does not read (superscripts)
        return -1
    return value if value < 2**62 else -1


def mapped(values: list, table: dict, ok: np.ndarray, kind: type = str) -> list:
    """`table[value]` per row (sides); a value of another class or not in `table` refuses
    its row (True == 1 as a dict key: the class is checked first)."""
    if set(map(type, values)) <= {kind}:
        out = list(map(table.get, values))
        if None not in out:
            return out
    else:
        out = [table.get(v) if v.__class__ is kind else None for v in values]
    ok &= [v is not None for v in out]
    return out


def specs(natives: list[str], spec_of: Callable, ok: np.ndarray) -> dict:
    """Each distinct native symbol's spec; a symbol `spec_of` refuses refuses its rows."""
    found = {}
    refused = set()
    for native in set(natives):
        try:
            found[native] = spec_of(native)
        except Exception:  # noqa: BLE001 - parse says why
            refused.add(native)
    if refused:
        ok &= [x not in refused for x in natives]
    return found


def spot(normalize: Callable[[str], str]) -> Callable[[str], Spec]:
    """The spec lookup of a spot venue without a catalog: its symbol rule, sizes in BASE."""
    return lambda native: Spec(normalize(native))


def accepted(ok: np.ndarray, per_frame: list[int] | None, *columns) -> tuple[list[int], list]:
    """(trades per frame, the columns cut to the rows of the frames taken): a frame with a
    refused row (or no row) is refused whole. `per_frame`: rows per frame (None: one each)."""
    if per_frame is None:
        keep = ok
        counts = ok.view(np.int8).tolist()
    else:
        sizes = np.array(per_frame, dtype=np.int64)
        frame_of = np.repeat(np.arange(sizes.size), sizes)
        bad = np.zeros(sizes.size, dtype=bool)
        bad[frame_of[~ok]] = True
        bad |= sizes == 0
        keep = ~bad[frame_of]
        counts = np.where(bad, 0, sizes).tolist()
        if keep.all():
            return counts, list(columns)
    if keep.all():
        return counts, list(columns)
    mask = keep.tolist()
    return counts, [c[keep] if isinstance(c, np.ndarray) else
                    [x for x, k in zip(c, mask, strict=True) if k] for c in columns]


def trades(venue: str, ok: np.ndarray, spec_of: Callable, natives: list[str], ids: list,
           price: np.ndarray, size: np.ndarray, sides: list[str], exchange_ts: np.ndarray,
           received: list[int], per_frame: list[int] | None = None
           ) -> tuple[TradeColumns, list[int]]:
    """A `Build`'s result from its checked fields, one value per row (ids as sent: int or
    str; times in µs; `received` per frame): the rows of the frames taken, as columns."""
    specs_found = specs(natives, spec_of, ok)
    received_ts = np.array(received, dtype=np.int64)
    if per_frame is not None:
        received_ts = np.repeat(received_ts, per_frame)
    counts, (natives, ids, sides, price, size, exchange_ts, received_ts) = accepted(
        ok, per_frame, natives, ids, sides, price, size, exchange_ts, received_ts)
    if ids and ids[0].__class__ is not str:
        ids = list(map(str, ids))
    return trade_columns(venue, natives, specs_found, ids, price, size, sides, exchange_ts,
                         received_ts), counts

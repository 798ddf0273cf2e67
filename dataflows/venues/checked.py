"""Checks of a fast path's decoded trade fields, a whole column at once, and the trade
columns made of them (`trades`): what `build` in a venue's `fast=` uses (typed.py).

Each check marks the rows it refuses in `ok` (bool per row): their frames go through the
venue's `parse`, which says why. An all-good column costs a C pass (`set(map(type, ...))`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

from dataflows.parse.text_columns import int_of_digits, int_texts, iso_z_us, same_width_digits
from dataflows.parse.trade_columns import TradeColumns, trade_columns
from dataflows.venues.instruments import Spec


def fields(prices: list, sizes: list, ids: list, sides: list, table: dict,
           side_kind: type = str, int_ids: bool = True) -> tuple:
    """(ok, prices, sizes, ids, sides) of a batch's decoded trades (read by comprehensions:
    attrgetter took twice as long), checked: `positive`, ids `Int` unless `int_ids` False."""
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
    return _times(values, ok, low, high, same_width_digits, int_of_digits)


def iso_z(values: list[str], ok: np.ndarray, low: int, high: int,
          one: Callable[[str], int]) -> np.ndarray:
    """Times sent as 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC) as int64 µs within [low, high),
    each the value `one` (the per-frame reader; -1: refused) gives."""
    return _times(values, ok, low, high, iso_z_us, one)


def _times(values: list[str], ok: np.ndarray, low: int, high: int, read: Callable,
           one: Callable[[str], int]) -> np.ndarray:
    """A column of times read at once (text_columns: `read` gives (column, rows read) or
    None), the rows it leaves read by `one`; out of [low, high) refuses the row."""
    got = read(values)
    if got is None:
        column = np.fromiter(map(one, values), np.int64, len(values))
    else:
        column, good = got
        for i in np.flatnonzero(~good).tolist():
            column[i] = one(values[i])
    ok &= (column >= low) & (column < high)
    return column


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
    found, refused = {}, set()
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
    if per_frame is not None and len(per_frame) == len(ok) and 0 not in per_frame:
        per_frame = None  # one row per frame (the usual push): no frame arithmetic
    received_ts = np.array(received, dtype=np.int64)
    if per_frame is not None:
        received_ts = np.repeat(received_ts, per_frame)
    counts, (natives, ids, sides, price, size, exchange_ts, received_ts) = accepted(
        ok, per_frame, natives, ids, sides, price, size, exchange_ts, received_ts)
    if ids and ids[0].__class__ is int:  # the checks left one class: all int, or all str
        ids = int_texts(ids)
    return trade_columns(venue, natives, specs_found, ids, price, size, sides, exchange_ts,
                         received_ts), counts

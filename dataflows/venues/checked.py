"""Checks of a fast path's decoded trade fields, a whole column at once, and the trade
columns made of them (`trades`): what `build` in a venue's `fast=` uses (typed.py).

Each check marks the rows it refuses in `ok` (bool per row): their frames go through the
venue's `parse`, which says why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dataflows.parse._fast_path import columns as struct_columns
from dataflows.parse.trade_columns import Symbols, TradeColumns, trade_columns
from dataflows.venues.instruments import Spec


class Reader:
    """A batch's decoded structs as columns, read in C (dataflows/parse/fast_path.c:
    one pass; a comprehension per field and a class check per value took a third of the
    parse). Fields are (name, kind): "o" as is, "f" float64, "i" int64, "t" the text of an
    int (ids), "s" a text of 1-128 characters (ids sent as text), "d" digit text as int64,
    "z" an ISO time (UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ') as int64 µs, or (name, "m",
    table, cls) for table[value] (sides). A value of another class (or not in the table)
    refuses its row. Texts "d" and "z" read in C are the usual shape; the per-value
    reader (`int_of_digits`; the venue's own for "z": (name, "z", one), -1 = refused)
    reads the others, so the result is exactly the per-frame one."""

    def __init__(self, *fields: tuple) -> None:
        self._spec = tuple(field[:2] if field[1] == "z" else field for field in fields)
        self._arrays = [(i, _DTYPES[field[1]]) for i, field in enumerate(fields)
                        if field[1] in _DTYPES]
        self._texts = [(i, field[0], field[2] if field[1] == "z" else int_of_digits)
                       for i, field in enumerate(fields) if field[1] in "dz"]

    def __call__(self, items: list) -> tuple[np.ndarray, list]:
        """(ok, [column per field]) of `items` (structs): ok False where a row is refused."""
        ok, *columns = struct_columns(items, self._spec)
        for i, dtype in self._arrays:
            columns[i] = np.frombuffer(columns[i], dtype)
        for i, name, one in self._texts:
            column = columns[i]
            for row in np.flatnonzero(column == -1).tolist():  # another shape: rare
                column[row] = one(getattr(items[row], name))
        return np.frombuffer(ok, np.bool_), columns


_DTYPES = {"f": np.float64, "i": np.int64, "d": np.int64, "z": np.int64}


def int_of_digits(text: str) -> int:
    """One digit text as `parse` reads it (`str.isdigit`, then `int`), below 2**62; else -1."""
    try:
        value = int(text) if text.isdigit() else -1
    except ValueError:  # digits int() does not read (superscripts)
        return -1
    return value if value < 2**62 else -1


def attribute(items: list, name: str) -> list:
    """Each struct's field `name` (the inner object of a wrapped frame), read in C."""
    return struct_columns(items, ((name, "o"),))[1]


def positive(column: np.ndarray, ok: np.ndarray) -> None:
    """Prices and sizes: only finite values > 0 (common.check_trade) keep their row."""
    ok &= (column > 0.0) & (column < np.inf)


def within(column: np.ndarray, ok: np.ndarray, low: int, high: int) -> None:
    """Times: only [low, high) keeps its row (a refused text reads as -1)."""
    ok &= (column >= low) & (column < high)


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
    """A `Build`'s result from its checked fields, one value per row (ids as text; times
    in µs; `received` per frame): the rows of the frames taken, as columns. Prices and
    sizes are checked here (`positive`), for every venue alike."""
    positive(price, ok)
    positive(size, ok)
    symbols = Symbols.of(natives, spec_of)
    if None in symbols.specs:  # a symbol `spec_of` refuses refuses its rows
        ok &= np.array([spec is not None for spec in symbols.specs])[symbols.codes]
    if per_frame is not None and len(per_frame) == len(ok) and 0 not in per_frame:
        per_frame = None  # one row per frame (the usual push): no frame arithmetic
    received_ts = np.asarray(received, dtype=np.int64)
    if per_frame is not None:
        received_ts = np.repeat(received_ts, per_frame)
    counts, (natives, ids, sides, price, size, exchange_ts, received_ts, codes) = accepted(
        ok, per_frame, natives, ids, sides, price, size, exchange_ts, received_ts,
        symbols.codes)
    return trade_columns(venue, natives, symbols._replace(codes=codes), ids, price, size,
                         sides, exchange_ts, received_ts), counts

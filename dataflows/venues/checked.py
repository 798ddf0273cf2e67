"""Checks of a fast path's decoded trade fields, a whole column at once, and the trade
columns made of them (`trades`): what `build` in a venue's `fast=` uses (typed.py).

Each check marks the rows it refuses in `ok` (bool per row): their frames go through the
venue's `parse`, which says why. An all-good column costs a C pass (`set(map(type, ...))`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import msgspec
import numpy as np

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
    column = _same_width_digits(values)
    if column is None:
        column = np.array([_digits(v) for v in values], dtype=np.int64)
    ok &= (column >= low) & (column < high)
    return column


def _same_width_digits(values: list[str]) -> np.ndarray | None:
    """The usual column (ASCII digits, all of one width <= 18: fits int64) read in numpy:
    the bytes of the joined text as a matrix of digits; None for any other column."""
    if not values or not 0 < len(values[0]) <= 18 or (chars := _chars(values)) is None:
        return None
    digits = chars - 48
    if (digits > 9).any():  # below "0" wraps around too
        return None
    return _number(digits)


def _chars(values: list[str]) -> np.ndarray | None:
    """Texts all of one length and ASCII as a (rows, length) matrix of their bytes, read in
    C (one join, one encode); None for any other column."""
    if not values or len(set(map(len, values))) != 1 or not (text := "".join(values)).isascii():
        return None
    return np.frombuffer(text.encode(), dtype=np.uint8).reshape(len(values), -1)


def _number(digits: np.ndarray) -> np.ndarray:
    """Each row of a matrix of digit values (0-9) read as one decimal number, int64."""
    powers = 10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits.astype(np.int64) @ powers


# 'YYYY-MM-DDTHH:MM:SS.ffffffZ': the separators' places and bytes, the digits' places
_ISO_Z = "0000-00-00T00:00:00.000000Z"
_ISO_SEPARATORS = np.array([i for i, c in enumerate(_ISO_Z) if c != "0"])
_ISO_DIGITS = np.array([i for i, c in enumerate(_ISO_Z) if c == "0"])
# the digits' weights in each field: year, month, day, hour, minute, second, µs
_ISO_FIELDS = np.zeros((len(_ISO_DIGITS), 7), dtype=np.int64)
for _field, (_first, _end) in enumerate(((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14),
                                         (14, 20))):
    _ISO_FIELDS[_first:_end, _field] = 10 ** np.arange(_end - _first - 1, -1, -1)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def iso_z(values: list[str], ok: np.ndarray, low: int, high: int,
          one: Callable[[str], int]) -> np.ndarray:
    """Times sent as 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC) as int64 µs within [low, high),
    read in numpy (a matrix of the texts' bytes, a calendar in integer arithmetic); a text
    of any other shape or out of the calendar is read by `one` (the per-frame reader; -1:
    refused), so every value is the one `one` gives. Out of range refuses its row."""
    chars = _chars(values) if values and len(values[0]) == len(_ISO_Z) else None
    if chars is None:
        column = np.fromiter(map(one, values), np.int64, len(values))
    else:
        digits = chars[:, _ISO_DIGITS] - 48
        year, month, day, hour, minute, second, micros = (digits.astype(np.int64) @ _ISO_FIELDS).T
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        good = ((chars[:, _ISO_SEPARATORS] == np.frombuffer(
            "".join(_ISO_Z[i] for i in _ISO_SEPARATORS).encode(), np.uint8)).all(axis=1)
            & (digits <= 9).all(axis=1) & (year >= 1) & (month >= 1) & (month <= 12)
            & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59))
        month = np.where(good, month, 1)
        good &= day <= _MONTH_DAYS[month] + (leap & (month == 2))
        column = ((_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
                  * 1_000_000 + micros)
        if not good.all():
            for i in np.flatnonzero(~good).tolist():
                column[i] = one(values[i])
    ok &= (column >= low) & (column < high)
    return column


def _days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (year >= 1; H. Hinnant's
    days_from_civil)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


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


_json = msgspec.json.encode


def int_texts(values: list[int]) -> list[str]:
    """`str` of each int (ids), cut from one JSON text of the list (written in C, the
    same digits) instead of a `str` call per id."""
    return _json(values).decode()[1:-1].split(",")

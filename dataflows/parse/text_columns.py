"""Columns of text read in C or numpy rather than by a Python call per value: how the
venues' fast paths (dataflows/venues/checked.py) read times and write ids. Each reader
gives exactly the per-value code's result or says it cannot
(tests/ingest/test_venues_columns_exact.py).
"""

from __future__ import annotations

import msgspec
import numpy as np


def same_width_digits(values: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Digit texts of one width <= 18 (fits int64) as int64, read in numpy: the bytes of
    the joined text as a matrix of digits. (column, read): `read` is False where a text
    holds anything but ASCII digits; None when the column is not all ASCII texts of one
    width."""
    if not values or not 0 < len(values[0]) <= 18 or (chars := _chars(values)) is None:
        return None
    digits = chars - 48  # below "0" wraps around too
    return _number(digits), (digits <= 9).all(axis=1)


def int_of_digits(text: str) -> int:
    """One digit text as `parse` reads it (`str.isdigit`, then `int`), below 2**62; else -1."""
    try:
        value = int(text) if text.isdigit() else -1
    except ValueError:  # digits int() does not read (superscripts)
        return -1
    return value if value < 2**62 else -1


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
_ISO_SEPARATOR_BYTES = np.frombuffer("".join(_ISO_Z[i] for i in _ISO_SEPARATORS).encode(), np.uint8)
# the digits' weights in each field: year, month, day, hour, minute, second, µs
_ISO_FIELDS = np.zeros((len(_ISO_DIGITS), 7), dtype=np.int64)
for _field, (_first, _end) in enumerate(((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14),
                                         (14, 20))):
    _ISO_FIELDS[_first:_end, _field] = 10 ** np.arange(_end - _first - 1, -1, -1)
_ISO_MIN_ROWS = 64  # fewer: a per-value reader is faster
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def iso_z_us(values: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Texts 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC) as int64 µs, read in numpy: a matrix of
    the texts' bytes, a calendar in integer arithmetic. (µs, read): `read` is False where a
    text has another shape or is off the calendar (its µs then mean nothing); None when
    the column is not all ASCII texts of this width, or too short to pay its ~30 numpy
    calls (~35 µs a batch: a 5-frame batch took 2.5x as long)."""
    chars = _chars(values) if len(values) >= _ISO_MIN_ROWS and len(values[0]) == len(_ISO_Z) \
        else None
    if chars is None:
        return None
    digits = chars[:, _ISO_DIGITS] - 48
    year, month, day, hour, minute, second, micros = (digits.astype(np.int64) @ _ISO_FIELDS).T
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    good = ((chars[:, _ISO_SEPARATORS] == _ISO_SEPARATOR_BYTES).all(axis=1)
            & (digits <= 9).all(axis=1) & (year >= 1) & (month >= 1) & (month <= 12)
            & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59))
    month = np.where(good, month, 1)
    good &= day <= _MONTH_DAYS[month] + (leap & (month == 2))
    return ((_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
            * 1_000_000 + micros), good


def _days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (year >= 1; H. Hinnant's
    days_from_civil)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


_json = msgspec.json.encode


def int_texts(values: list[int]) -> list[str]:
    """`str` of each int (ids), cut from one JSON text of the list (written in C, the
    same digits) instead of a `str` call per id."""
    return _json(values).decode()[1:-1].split(",")

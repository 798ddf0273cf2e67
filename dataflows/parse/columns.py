"""Records as columns: what the hot paths carry from parse to the Arrow insert.

A micro-batch of thousands of messages used to become thousands of NamedTuples, then a
key string per record, then `zip(*rows)` and one `pa.array` per column in the sink.
`Columns` keeps the batch as columns from the parser on: names as lists of str (mostly
shared objects from per-symbol caches), numbers as numpy arrays; dedup filters it with a
mask, the sink concatenates chunks and builds the Arrow table from the arrays without a
Python object per value. `ReadingColumns` (MQTT) is here; `TradeColumns` (exchange
feeds) in trade_columns.py.

It still reads as a sequence of its row type (`len`, indexing, iteration, `==` with a
list), so code and tests that look at single records keep working.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, compress
from typing import ClassVar

import numpy as np
import pyarrow as pa

from feedhouse.core.records import Reading

_TS = pa.timestamp("us", tz="UTC")


class Columns:
    """One column per field of `ROW` (a NamedTuple), in its order (`__slots__`): the
    fields named in `ARRAYS` as numpy arrays of that dtype, the others as lists."""

    __slots__ = ()
    ROW: ClassVar[type]
    ARRAYS: ClassVar[dict[str, type]]
    EVENT: ClassVar[str]  # the event-time column (int64 µs)

    def __init__(self, *columns) -> None:
        for name, column in zip(self.__slots__, columns, strict=True):
            setattr(self, name, column)

    def columns(self) -> list:
        return [getattr(self, name) for name in self.__slots__]

    @property
    def event_ts(self) -> np.ndarray:
        return getattr(self, self.EVENT)

    # --- building -------------------------------------------------------------------
    @classmethod
    def empty(cls):
        return cls(*(np.empty(0, cls.ARRAYS[n]) if n in cls.ARRAYS else [] for n in cls.__slots__))

    @classmethod
    def from_rows(cls, rows: Sequence):
        """Rows of `ROW` as columns (columns already: as they are)."""
        if isinstance(rows, cls):
            return rows
        if not rows:
            return cls.empty()
        return cls(*(np.array(c, dtype=cls.ARRAYS[n]) if n in cls.ARRAYS else list(c)
                     for n, c in zip(cls.__slots__, zip(*rows, strict=True), strict=True)))

    @classmethod
    def concat(cls, parts: Sequence):
        """Chunks (columns, or lists of rows) end to end."""
        cols = [cls.from_rows(p) for p in parts if len(p)]
        if not cols:
            return cls.empty()
        if len(cols) == 1:
            return cols[0]
        return cls(*(np.concatenate([getattr(c, n) for c in cols]) if n in cls.ARRAYS
                     else list(chain.from_iterable(getattr(c, n) for c in cols))
                     for n in cls.__slots__))

    def take(self, keep: np.ndarray):
        """The records where `keep` (bool mask) is True, or at `keep` (int positions)."""
        if keep.dtype == bool:
            mask = keep.tolist()
            return type(self)(*(getattr(self, n)[keep] if n in self.ARRAYS
                                else list(compress(getattr(self, n), mask)) for n in self.__slots__))
        at = keep.tolist()
        return type(self)(*(getattr(self, n)[keep] if n in self.ARRAYS
                            else list(map(getattr(self, n).__getitem__, at)) for n in self.__slots__))

    # --- reading as a sequence of ROW -------------------------------------------------
    def __len__(self) -> int:
        return len(getattr(self, self.__slots__[0]))

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self)[i]
        return self.ROW._make(getattr(self, n)[i].item() if n in self.ARRAYS else getattr(self, n)[i]
                              for n in self.__slots__)

    def __iter__(self) -> Iterator:
        return map(self.ROW._make, zip(*(getattr(self, n).tolist() if n in self.ARRAYS
                                         else getattr(self, n) for n in self.__slots__), strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    def __add__(self, other: object) -> list:  # as lists add: the rows of both
        if isinstance(other, Columns | list | tuple):
            return list(self) + list(other)
        return NotImplemented

    def __radd__(self, other: object) -> list:
        if isinstance(other, list | tuple):
            return list(other) + list(self)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class ReadingColumns(Columns):
    """`Reading`s as columns (the MQTT hot path): seq uint64, value float64, times int64 µs."""

    __slots__ = Reading._fields
    ROW = Reading
    ARRAYS = {"seq": np.uint64, "value": np.float64, "device_ts": np.int64,
              "received_ts": np.int64}
    EVENT = "device_ts"

    def to_arrow(self, schema: pa.Schema, feed: str) -> pa.Table:
        """The `iot.readings` insert table (schema order), `feed` as a constant column."""
        n = len(self.device_id)
        arrays = [
            pa.array(self.device_id, pa.string()), pa.array(self.sensor, pa.string()),
            pa.array(self.seq, pa.uint64()), pa.array(self.value, pa.float64()),
            pa.array(self.unit, pa.string()),
            pa.array(self.device_ts, _TS),  # int64 µs as they are: no cast pass
            pa.array(self.received_ts, _TS),
            pa.array(self.site, pa.string()),
            pa.array([feed] * n, pa.string()),
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

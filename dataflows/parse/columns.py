"""Readings as columns: what the MQTT hot path carries from parse to the Arrow insert.

A micro-batch of thousands of single-reading messages used to become thousands of
`Reading` tuples, then a key string per reading, then `zip(*rows)` and one `pa.array`
per column in the sink. `ReadingColumns` keeps the batch as columns from the parser on:
names as lists of str (taken from the per-topic cache, so mostly shared objects),
numbers as numpy arrays; dedup filters it with a mask, the sink concatenates chunks and
builds the Arrow table from the arrays without a Python object per value.

It still reads as a sequence of `Reading`s (`len`, indexing, iteration, `==` with a
list), so code and tests that look at single readings keep working.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import compress

import numpy as np
import pyarrow as pa

from feedhouse.core.records import Reading

_TS = pa.timestamp("us", tz="UTC")


class ReadingColumns:
    __slots__ = ("device_id", "sensor", "seq", "value", "unit", "device_ts", "received_ts",
                 "site")

    def __init__(self, device_id: list[str], sensor: list[str], seq: np.ndarray,
                 value: np.ndarray, unit: list[str], device_ts: np.ndarray,
                 received_ts: np.ndarray, site: list[str]) -> None:
        self.device_id = device_id
        self.sensor = sensor
        self.seq = seq  # uint64
        self.value = value  # float64
        self.unit = unit
        self.device_ts = device_ts  # int64 µs
        self.received_ts = received_ts  # int64 µs
        self.site = site

    # --- building -------------------------------------------------------------------
    @classmethod
    def empty(cls) -> ReadingColumns:
        return cls([], [], np.empty(0, np.uint64), np.empty(0, np.float64), [],
                   np.empty(0, np.int64), np.empty(0, np.int64), [])

    @classmethod
    def from_rows(cls, rows: Sequence[Reading]) -> ReadingColumns:
        if isinstance(rows, ReadingColumns):
            return rows
        if not rows:
            return cls.empty()
        d, s, q, v, u, t, r, site = zip(*rows, strict=True)
        return cls(list(d), list(s), np.array(q, dtype=np.uint64), np.array(v, dtype=np.float64),
                   list(u), np.array(t, dtype=np.int64), np.array(r, dtype=np.int64), list(site))

    @classmethod
    def concat(cls, parts: Sequence[ReadingColumns | Sequence[Reading]]) -> ReadingColumns:
        cols = [cls.from_rows(p) for p in parts if len(p)]
        if not cols:
            return cls.empty()
        if len(cols) == 1:
            return cols[0]
        return cls(
            [x for c in cols for x in c.device_id], [x for c in cols for x in c.sensor],
            np.concatenate([c.seq for c in cols]), np.concatenate([c.value for c in cols]),
            [x for c in cols for x in c.unit], np.concatenate([c.device_ts for c in cols]),
            np.concatenate([c.received_ts for c in cols]), [x for c in cols for x in c.site],
        )

    def take(self, keep: np.ndarray) -> ReadingColumns:
        """The readings where `keep` (bool mask) is True."""
        mask = keep.tolist()
        return ReadingColumns(
            list(compress(self.device_id, mask)), list(compress(self.sensor, mask)),
            self.seq[keep], self.value[keep], list(compress(self.unit, mask)),
            self.device_ts[keep], self.received_ts[keep], list(compress(self.site, mask)),
        )

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

    # --- reading as a sequence of Reading ---------------------------------------------
    def __len__(self) -> int:
        return len(self.device_id)

    def __bool__(self) -> bool:
        return bool(self.device_id)

    def __getitem__(self, i: int) -> Reading:
        return Reading(self.device_id[i], self.sensor[i], int(self.seq[i]), float(self.value[i]),
                       self.unit[i], int(self.device_ts[i]), int(self.received_ts[i]),
                       self.site[i])

    def __iter__(self) -> Iterator[Reading]:
        return map(Reading._make, zip(
            self.device_id, self.sensor, self.seq.tolist(), self.value.tolist(), self.unit,
            self.device_ts.tolist(), self.received_ts.tolist(), self.site, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadingColumns | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReadingColumns({list(self)!r})"

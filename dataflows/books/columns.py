"""L2 book updates as columns: numpy arrays per batch, never a Python object per level.

A book parser turns one frame into `BookFrame`s (one per symbol and event: the frame-level
fields once, and the venue's own [price, size] text lists per side, untouched, so a book
state can rebuild the venue's checksum string). `BookColumns.of(frames)` turns a batch of
frames into the `market.book_updates` columns with numpy: each side's levels convert in
one `np.array(..., dtype=float64)` call and the frame fields repeat with `np.repeat`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from feedhouse.core.records import iso_from_us


class BookFrame(NamedTuple):
    """One book event of one symbol: a snapshot (replaces the book) or an update."""

    venue: str
    symbol: str
    native_symbol: str
    instrument_type: str
    exchange_ts: int  # µs
    received_ts: int  # µs
    is_snapshot: bool
    update_id: int  # the venue's id of this event; 0 = none
    prev_update_id: int  # the id that must come right before it; 0 = none
    bids: list  # [[price, size, ...], ...] as the venue sent them (text or numbers)
    asks: list
    checksum: int | None = None  # the venue's checksum of the book after this event
    contract_size: float = 1.0  # value of one size unit: BASE, or QUOTE when inverse
    inverse: bool = False


# market.book_updates columns, in table order (inserted_ts is the table's default)
COLUMNS = (
    "venue", "symbol", "native_symbol", "instrument_type", "exchange_ts", "received_ts",
    "is_snapshot", "side", "price", "amount", "native_amount", "update_id", "prev_update_id",
    "feed",
)
BID, ASK = 0, 1
SIDES = ("bid", "ask")


def _levels(levels: list) -> np.ndarray:
    """(n, 2) float64 prices and sizes of [price, size, ...] entries (one conversion when
    every entry has the same width, as each venue's do)."""
    try:
        array = np.array(levels, dtype=np.float64)
    except ValueError:
        if any(level.__class__ is not list or len(level) < 2 for level in levels):
            raise ValueError("a book level without price and size") from None
        return np.array([level[:2] for level in levels], dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError("a book level without price and size")
    return array[:, :2]


def base_amounts(native: np.ndarray, price: np.ndarray, contract_size: float,
                 inverse: bool) -> np.ndarray:
    """The venue's sizes in BASE units (instruments.Spec.base, vectorised): inverse
    contracts are QUOTE value / price, rounded to 8 decimals from 1e-4 BASE up."""
    if inverse:
        with np.errstate(divide="ignore", invalid="ignore"):
            amount = np.where(price > 0, native * contract_size / price, 0.0)
        return np.where(amount >= 1e-4, np.round(amount, 8), amount)
    if contract_size == 1.0:
        return native
    return np.round(native * contract_size, 12)


@dataclass
class BookColumns:
    """A batch of level updates: one numpy array per market.book_updates column, with
    the strings dictionary-coded (`names[code]`) so no column holds an object per level."""

    frame: np.ndarray  # int64: index of the BookFrame each level came from
    side: np.ndarray  # int8: 0 bid, 1 ask
    price: np.ndarray  # float64
    amount: np.ndarray  # float64, BASE units (0 = level removed)
    native_amount: np.ndarray  # float64, as the venue sent it
    frames: list[BookFrame]  # the frames the columns hold (the valid ones)
    rejected: list[tuple[BookFrame, str]] = field(default_factory=list)  # (frame, reason)
    _fields: tuple | None = field(default=None, repr=False, compare=False)  # frames transposed

    def __len__(self) -> int:
        return len(self.price)

    @classmethod
    def of(cls, frames: list[BookFrame]) -> BookColumns:
        """The batch's columns. A frame with a level that is not [price, size], or whose
        price is not > 0 or size not >= 0 (finite), is left out whole, with its reason in
        `rejected` (a frame is all or nothing, as trades' frames are)."""
        try:
            built = cls._of(frames)
        except (ValueError, TypeError):  # find the bad frames one by one (only on bad input)
            good, rejected = [], []
            for frame in frames:
                try:
                    cls._of([frame])
                    good.append(frame)
                except (ValueError, TypeError) as exc:
                    rejected.append((frame, str(exc)[:160]))
            built = cls._of(good)
            built.rejected = rejected
        bad = ~((built.price > 0) & (built.price < np.inf) & (built.native_amount >= 0)
                & (built.native_amount < np.inf))
        if bad.any():
            drop = set(np.unique(built.frame[bad]).tolist())
            rejected = built.rejected + [(f, "price must be > 0 and size >= 0 (finite)")
                                         for i, f in enumerate(built.frames) if i in drop]
            built = cls._of([f for i, f in enumerate(built.frames) if i not in drop])
            built.rejected = rejected
        return built

    @classmethod
    def _of(cls, frames: list[BookFrame]) -> BookColumns:
        flat: list = []  # every level of the batch, in order: one numpy conversion
        sides: list[int] = []  # (side code, level count) runs
        runs: list[int] = []
        counts = []
        for frame in frames:
            bids, asks = frame.bids, frame.asks
            flat += bids
            flat += asks
            sides += (BID, ASK)
            runs += (len(bids), len(asks))
            counts.append(len(bids) + len(asks))
        if not flat:
            empty = np.empty(0)
            return cls(np.empty(0, np.int64), np.empty(0, np.int8), empty, empty, empty, frames)
        levels = _levels(flat)
        price, native = levels[:, 0], levels[:, 1]
        frame_of = np.repeat(np.arange(len(frames), dtype=np.int64), counts)
        contract = np.array([f.contract_size for f in frames])[frame_of]
        inverse = np.array([f.inverse for f in frames], dtype=bool)[frame_of]
        amount = native
        if (contract != 1.0).any():  # linear contracts: size x contract size, in BASE
            amount = np.where(contract != 1.0, np.round(native * contract, 12), native)
        if inverse.any():  # inverse: QUOTE value / price
            amount = np.where(inverse, base_amounts(native * contract, price, 1.0, True), amount)
        return cls(frame_of, np.repeat(np.array(sides, np.int8), runs), price, amount,
                   native, frames)

    def levels_per_frame(self) -> np.ndarray:
        """Level updates of each frame (int64, one per frame)."""
        return np.bincount(self.frame, minlength=len(self.frames))

    def take_frames(self, keep: np.ndarray) -> BookColumns:
        """The columns of the frames where `keep` (bool per frame) is set."""
        if keep.all():
            return self
        renumber = np.cumsum(keep) - 1
        mask = keep[self.frame]
        return BookColumns(renumber[self.frame[mask]], self.side[mask], self.price[mask],
                           self.amount[mask], self.native_amount[mask],
                           [f for f, k in zip(self.frames, keep, strict=True) if k])

    @classmethod
    def concat(cls, parts: list[BookColumns]) -> BookColumns:
        """One batch of several (frame indexes renumbered)."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(p.frames) for p in parts[:-1]])
        return cls(np.concatenate([p.frame + o for p, o in zip(parts, offsets, strict=True)]),
                   np.concatenate([p.side for p in parts]),
                   np.concatenate([p.price for p in parts]),
                   np.concatenate([p.amount for p in parts]),
                   np.concatenate([p.native_amount for p in parts]),
                   [f for p in parts for f in p.frames])

    def field_values(self, index: int) -> tuple:
        """A BookFrame field of every frame, in order. The frames are transposed once per
        batch (one C-level `zip`), not walked again for each field the Arrow table, the
        dedup keys and the ledger minutes read."""
        if self._fields is None:
            self._fields = tuple(zip(*self.frames, strict=True)) or ((),) * len(BookFrame._fields)
        return self._fields[index]

    def frame_values(self, index: int, dtype) -> np.ndarray:
        """A BookFrame field of every frame as a numpy array (one value per frame)."""
        return np.array(self.field_values(index), dtype=dtype)

    def frame_field(self, index: int, dtype) -> np.ndarray:
        """A BookFrame field repeated per level (by the level's frame index)."""
        values = self.frame_values(index, dtype)
        return values[self.frame] if len(values) else values

    def notional(self) -> float:
        """sum(price * amount) of the batch (the independent count's checksum)."""
        return float(np.dot(self.price, self.amount))

    def to_arrow(self, feed: str = "", dictionary: bool = False) -> pa.Table:
        """The batch as an Arrow table with the market.book_updates columns (strings as
        dictionaries over the frames' values, times as µs timestamps). `dictionary`: the
        string columns stay dictionary arrays (ClickHouse reads them as LowCardinality;
        the live sink: no string object per level, ~30% of this call's cost)."""
        def text(array: pa.DictionaryArray) -> pa.Array:
            return array if dictionary else array.cast(pa.string())

        def coded(index: int) -> pa.Array:
            names = self.field_values(index)
            uniq = sorted(set(names))
            index = {n: i for i, n in enumerate(uniq)}
            codes = np.array([index[n] for n in names] or [0], dtype=np.int32)
            return text(pa.DictionaryArray.from_arrays(
                pa.array(codes[self.frame] if len(names) else codes[:0]), pa.array(uniq, pa.string())))

        ts = pa.timestamp("us", tz="UTC")
        return pa.table({
            "venue": coded(0), "symbol": coded(1), "native_symbol": coded(2),
            "instrument_type": coded(3),
            "exchange_ts": pa.array(self.frame_field(4, np.int64), ts),
            "received_ts": pa.array(self.frame_field(5, np.int64), ts),
            "is_snapshot": pa.array(self.frame_field(6, np.uint8), pa.uint8()),
            "side": text(pa.DictionaryArray.from_arrays(
                pa.array(self.side.astype(np.int32)), pa.array(SIDES))),
            "price": pa.array(self.price), "amount": pa.array(self.amount),
            "native_amount": pa.array(self.native_amount),
            "update_id": pa.array(self.frame_field(7, np.uint64), pa.uint64()),
            "prev_update_id": pa.array(self.frame_field(8, np.uint64), pa.uint64()),
            "feed": text(pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(self), np.int32)), pa.array([feed]))),
        })

    def json_rows(self):
        """One dict per level update with the market.book_updates fields (for `capture
        parse --channel books`; the only place a level becomes a Python object)."""
        for i in range(len(self)):
            frame = self.frames[self.frame[i]]
            yield {
                "venue": frame.venue, "symbol": frame.symbol,
                "native_symbol": frame.native_symbol, "instrument_type": frame.instrument_type,
                "exchange_ts": iso_from_us(frame.exchange_ts),
                "received_ts": iso_from_us(frame.received_ts),
                "is_snapshot": int(frame.is_snapshot), "side": SIDES[self.side[i]],
                "price": float(self.price[i]), "amount": float(self.amount[i]),
                "native_amount": float(self.native_amount[i]),
                "update_id": frame.update_id, "prev_update_id": frame.prev_update_id,
            }

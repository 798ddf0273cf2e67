"""Trades as columns from the venues' fast paths to the `market.trades` insert.

Building one `Trade` NamedTuple per trade cost about as much as decoding its frame
(issue 16); dedup and the sink then took the tuples apart again, field by field. The fast
paths (dataflows/venues/typed.py `fast_many`) decode a micro-batch's frames and build each
column in one pass over the decoded structs (`trade_columns`); the per-frame `parse`
fallback's rows are converted (`TradeColumns.from_rows`). Dedup hashes the key columns,
the sink builds Arrow from the columns.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from dataflows.parse._fast_path import base_amounts, factorize
from dataflows.parse.columns import Columns
from feedhouse.core.records import Trade

_TS = pa.timestamp("us", tz="UTC")


class TradeColumns(Columns):
    """`Trade`s as columns: names, ids and sides as lists of str; price, amounts and
    contract sizes float64, times int64 µs."""

    __slots__ = Trade._fields
    ROW = Trade
    ARRAYS = {"price": np.float64, "amount": np.float64, "exchange_ts": np.int64,
              "received_ts": np.int64, "native_amount": np.float64, "contract_size": np.float64}
    EVENT = "exchange_ts"

    def to_arrow(self, schema: pa.Schema, feed: str) -> pa.Table:
        """The `market.trades` insert table (schema order), `feed` as a constant column."""
        arrays = [pa.array(column, pa.timestamp("us", tz="UTC")) if name.endswith("_ts")
                  else pa.array(column, schema.field(name).type)
                  for name, column in zip(self.__slots__, self.columns(), strict=True)]
        arrays.append(pa.array([feed] * len(self), pa.string()))
        return pa.Table.from_arrays(arrays, schema=schema)


class Symbols(NamedTuple):
    """A batch's native symbols factorized (in C: `factorize`): each trade's `codes` place
    in `natives` (each distinct symbol once) and their instruments.Spec (None: refused, so
    none of its trades is left). Per-symbol facts become per-trade columns by indexing."""

    codes: np.ndarray
    natives: list[str]
    specs: list

    @classmethod
    def of(cls, natives: list[str], spec_of) -> Symbols:
        """The symbols of `natives`, each with `spec_of(native)` or None where it raises."""
        codes, distinct = factorize(natives)
        return cls(np.frombuffer(codes, np.int64), distinct, list(map(_spec_or_none(spec_of),
                                                                      distinct)))

    def each(self, field: str, refused: object) -> list:
        """A spec field per distinct symbol (`refused` for a refused one)."""
        return [refused if spec is None else getattr(spec, field) for spec in self.specs]

    def per_trade(self, values: list, natives: list[str]) -> list:
        """`values[code]` (one per distinct symbol) per trade: without indexing when the
        trades' symbols all give one value (spot kinds) or their own name (symbols already
        in our form)."""
        live = [(v, x) for v, x, spec in zip(values, self.natives, self.specs, strict=True)
                if spec is not None]
        if len({v for v, _ in live}) == 1:
            return [live[0][0]] * len(natives)
        if all(v == x for v, x in live):
            return list(natives)
        return np.array(values, dtype=object)[self.codes].tolist()


def _spec_or_none(spec_of):
    def one(native: str):
        try:
            return spec_of(native)
        except Exception:  # noqa: BLE001 - the venue's `parse` says why
            return None

    return one


def trade_columns(venue: str, natives: list[str], symbols: Symbols, ids: list[str],
                  price: np.ndarray, size: np.ndarray, sides: list[str],
                  exchange_ts: np.ndarray, received_ts: np.ndarray) -> TradeColumns:
    """Columns of trades from their fields, one value per trade (`symbols.codes` cut to
    these trades); sizes as the venue sends them, amounts in BASE."""
    specs = [spec for spec in symbols.specs if spec is not None]
    n = len(natives)
    if all(s.contract_size == 1.0 and not s.inverse for s in specs):
        amount, contract_size = size, np.ones(n)
    else:  # contracts: each size in BASE at its price (instruments.trade)
        contract_size = np.array(symbols.each("contract_size", 1.0), np.float64)[symbols.codes]
        inverse = np.array(symbols.each("inverse", False), bool)[symbols.codes]
        amount = np.frombuffer(base_amounts(inverse, price, size, contract_size), np.float64)
    return TradeColumns([venue] * n, symbols.per_trade(symbols.each("symbol", ""), natives),
                        natives, ids, price, amount, sides, exchange_ts, received_ts,
                        symbols.per_trade(symbols.each("kind", ""), natives), size,
                        contract_size)

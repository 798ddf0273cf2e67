"""Trades as columns from the venues' fast paths to the `market.trades` insert.

Building one `Trade` NamedTuple per trade cost about as much as decoding its frame
(issue 16); dedup and the sink then took the tuples apart again, field by field. The fast
paths (dataflows/venues/typed.py `fast_many`) decode a micro-batch's frames and build each
column in one pass over the decoded structs (`trade_columns`); the per-frame `parse`
fallback's rows are converted (`TradeColumns.from_rows`). Dedup hashes the key columns,
the sink builds Arrow from the columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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


def trade_columns(venue: str, natives: list[str], specs: dict, ids: list[str],
                  price: np.ndarray, size: np.ndarray, sides: list[str],
                  exchange_ts: np.ndarray, received_ts: np.ndarray) -> TradeColumns:
    """Columns of trades from their fields, one value per trade: `specs` maps each native
    symbol to its instruments.Spec; sizes as the venue sends them, amounts in BASE."""
    symbol = {native: spec.symbol for native, spec in specs.items()}.__getitem__
    kind = {native: spec.kind for native, spec in specs.items()}.__getitem__
    n = len(natives)
    if all(s.contract_size == 1.0 and not s.inverse for s in specs.values()):
        amount, contract_size = size, np.ones(n)
    else:  # contracts: each size in BASE at its price (instruments.trade)
        contract_size = np.fromiter(map({x: s.contract_size for x, s in specs.items()}.get,
                                        natives), np.float64, n)
        amount = _base_amounts(natives, specs, price, size, contract_size)
    return TradeColumns([venue] * n, list(map(symbol, natives)), natives, ids, price, amount,
                        sides, exchange_ts, received_ts, list(map(kind, natives)), size,
                        contract_size)



def _base_amounts(natives: list[str], specs: dict, price: np.ndarray, size: np.ndarray,
                  contract_size: np.ndarray) -> np.ndarray:
    """instruments.Spec.base per trade: the products and quotients in numpy (the same
    IEEE operations), the rounding in Python (correctly rounded, as `round` does)."""
    inverse = np.fromiter(map({x: s.inverse for x, s in specs.items()}.get, natives), bool,
                          len(natives))
    value = size * contract_size
    quotient = np.where(inverse, value / price, value).tolist()
    as_given = (contract_size == 0.0) | ((contract_size == 1.0) & ~inverse)  # unknown, BASE
    return np.array([
        q if keep else (round(a, 8) if a >= 1e-4 else float(f"{a:.6g}")) if inv
        else round(a, 12)
        for q, a, keep, inv in zip(size.tolist(), quotient, as_given.tolist(), inverse.tolist(),
                                   strict=True)], dtype=np.float64)

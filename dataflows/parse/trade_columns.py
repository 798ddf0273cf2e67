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
        of = specs.__getitem__
        amount = np.array([q if (s := of(x)).contract_size == 1.0 and not s.inverse
                           else s.base(q, p) for x, q, p in zip(natives, size.tolist(),
                                                                price.tolist(), strict=True)])
        contract_size = np.fromiter((of(x).contract_size for x in natives), np.float64, n)
    return TradeColumns([venue] * n, list(map(symbol, natives)), natives, ids, price, amount,
                        sides, exchange_ts, received_ts, list(map(kind, natives)), size,
                        contract_size)


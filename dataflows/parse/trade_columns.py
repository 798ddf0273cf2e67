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

from dataflows.parse._struct_columns import factorize
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
        amount = _base_amounts(inverse, price, size, contract_size)
    return TradeColumns([venue] * n, symbols.per_trade(symbols.each("symbol", ""), natives),
                        natives, ids, price, amount, sides, exchange_ts, received_ts,
                        symbols.per_trade(symbols.each("kind", ""), natives), size,
                        contract_size)


def _base_amounts(inverse: np.ndarray, price: np.ndarray, size: np.ndarray,
                  contract_size: np.ndarray) -> np.ndarray:
    """instruments.Spec.base per trade, in numpy: the same IEEE products and quotients,
    `round` as Python's (`rounded`); amounts under 1e-4 (6 significant digits) in Python."""
    value = size * contract_size
    quotient = np.where(inverse, value / price, value)
    as_given = (contract_size == 0.0) | ((contract_size == 1.0) & ~inverse)  # unknown, BASE
    amount = size.copy()
    for cut, digits in ((inverse & ~as_given & (quotient >= 1e-4), 8), (~inverse & ~as_given, 12)):
        amount[cut] = rounded(quotient[cut], digits)
    for i in np.flatnonzero(inverse & ~as_given & ~(quotient >= 1e-4)).tolist():
        amount[i] = float(f"{quotient[i]:.6g}")
    return amount


def rounded(values: np.ndarray, digits: int) -> np.ndarray:
    """`round(value, digits)` of each value, exactly as Python gives it, in numpy.

    Python rounds the exact binary value to the nearest multiple of 10**-digits and reads
    that decimal back correctly rounded. Here p = value * 10**digits (10**digits exact) is
    within half a spacing of the exact product, so when p < 2**52 lies farther than one
    spacing from a half, the nearest integer N of the exact product is rint(p), and N /
    10**digits (N exact) is the same correctly rounded read. The other values (near a
    half, huge, negative, not finite) go through Python's `round`.
    """
    scale = float(10**digits)
    with np.errstate(over="ignore", invalid="ignore"):
        p = values * scale
        exact = (p >= 0.0) & (p < 2.0**52) & (np.abs(p - np.floor(p) - 0.5) > np.spacing(p))
    out = np.rint(p) / scale
    if not exact.all():
        for i in np.flatnonzero(~exact).tolist():
            out[i] = round(float(values[i]), digits)
    return out

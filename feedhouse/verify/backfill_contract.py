"""The market.trades contract checked on archive columns (vectorised), with the same rules
and dead-letter reasons as the per-record model: the mask says which rows pass, and a row
that does not is given its reason by the model itself."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from feedhouse.core.records import MARKET_EPOCH_US, Trade, validate_trades

SIDES = ("buy", "sell", "unknown")
SYMBOL_PATTERN = r"^[A-Z0-9.]+-[A-Z0-9.]+(-[A-Z0-9.]+)*$"  # TradeModel.symbol's
MAX_NAME = 128  # feedhouse.core.records.Name


def contract_mask(venue: str, cols: pa.Table) -> pa.Array:
    """True where a row meets feedhouse.core.records.TradeModel (the same rules, vectorised)."""
    n = cols.num_rows
    if not 0 < len(venue) <= MAX_NAME:
        return pa.array([False] * n)

    def named(col) -> pa.Array:
        size = pc.utf8_length(col)
        return pc.and_(pc.greater(size, 0), pc.less_equal(size, MAX_NAME))

    def positive(col) -> pa.Array:
        return pc.and_(pc.greater(col, 0.0), pc.is_finite(col))

    distinct = pc.unique(cols["symbol"])
    good_symbols = distinct.filter(pc.fill_null(pc.match_substring_regex(distinct, SYMBOL_PATTERN), False))
    checks = [
        pc.is_in(cols["symbol"], value_set=good_symbols),
        named(cols["native_symbol"]), named(cols["trade_id"]),
        positive(cols["price"]), positive(cols["amount"]),
        pc.is_in(cols["side"], value_set=pa.array(SIDES)),
        pc.greater_equal(cols["exchange_ts"], MARKET_EPOCH_US),
        pc.greater(cols["received_ts"], 0),
    ]
    mask = checks[0]
    for check in checks[1:]:
        mask = pc.and_(mask, check)
    return pc.fill_null(mask, False)


def _trade(venue: str, row: dict) -> Trade:
    return Trade(venue, row["symbol"], row["native_symbol"], row["trade_id"], row["price"],
                 row["amount"], row["side"], row["exchange_ts"], row["received_ts"])


def contract_reason(venue: str, row: dict) -> str | None:
    """Why one row breaks the market.trades contract (pydantic's words), None if it does not."""
    try:
        validate_trades([_trade(venue, row)])
        return None
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"][1:]) or "row"
            parts.append(f"{where}: {err['msg']}")
        return "market.trades contract: " + "; ".join(parts)


def split_invalid(venue: str, cols: pa.Table, valid: pa.Array) -> tuple[pa.Table, list[tuple[dict, str]]]:
    """(rows to insert, [(row, reason)] refused). The vectorised mask picks the suspects;
    pydantic has the last word on each (and gives its reason)."""
    keep = valid.to_numpy(zero_copy_only=False).copy()
    suspects = np.flatnonzero(~keep)
    bad: list[tuple[dict, str]] = []
    for i, row in zip(suspects, cols.take(pa.array(suspects)).to_pylist(), strict=True):
        reason = contract_reason(venue, row)
        if reason is None:
            keep[i] = True
        else:
            bad.append((row, reason))
    return cols.filter(pa.array(keep)), bad



"""Stored BitMEX quanto rows in contracts (contract_size 0) converted to BASE.

A quanto contract's BASE size is its XBT multiplier x the XBT price at the time
(bitmex_units.py has BitMEX's formula and a worked example), so no constant converts its
rows: trades stored before migration 010 (live ones take BitMEX's homeNotional) and quotes
whose connection had not yet seen an XBT price (and all quanto quotes before this
conversion existed). The XBT price of each row's minute comes from the same store:
- BitMEX's own figures first: XBTUSD trades, and the rate the converted quanto trades
  carry (contract_size / multiplier);
- else the median of every venue's BTC against USD/USDT/USDC trades in that minute
  (spot and perpetuals: what BitMEX's .BXBT index is made of);
the nearest priced minute is used when it is at most MAX_GAP_S away. The rows are
written again converted (contract_size = multiplier x price, amount / sizes =
native x contract_size) and the old ones deleted, like stored.py's quotes. Rows with no
price near enough keep contract_size 0 and are counted per instrument (`unpriced`).
"""

from __future__ import annotations

from collections import Counter

from dataflows.venues.bitmex_units import MAX_GAP_US, XBT_USD
from dataflows.venues.instruments import Spec
from feedhouse.core.sqlsafe import string_literal

MAX_GAP_S = MAX_GAP_US // 1_000_000
_USD_BTC = ("BTC-USD", "BTC-USDT", "BTC-USDC", "BTC-USD-PERP", "BTC-USDT-PERP",
            "BTC-USDC-PERP", "BTC-USD-INV-PERP")
_SYNC = {"mutations_sync": 2}
_TRADES = ("venue, symbol, native_symbol, trade_id, price, amount, side, exchange_ts, "
           "received_ts, instrument_type, native_amount, contract_size, inserted_ts, feed")
_QUOTES = ("venue, symbol, native_symbol, bid_price, bid_size, ask_price, ask_size, exchange_ts, "
           "received_ts, instrument_type, update_id, native_bid_size, native_ask_size, "
           "contract_size, inserted_ts, feed")
# what identifies a converted row's original (the rows are written again, then deleted)
_KEYS = {"trades": "symbol, trade_id",
         "quotes": "symbol, exchange_ts, received_ts, update_id, bid_price, ask_price, "
                   "native_bid_size, native_ask_size"}


def convert_quanto(client, venue: str, specs: dict[str, Spec]) -> tuple[Counter, Counter, list[int]]:
    """Convert `venue`'s stored quanto rows (specs: native -> Spec with `quanto`); returns
    (rows converted per table, rows left per instrument, minutes of converted trades)."""
    natives = ", ".join(string_literal(n) for n in specs)
    multiplier = f"multiIf({', '.join(f'native_symbol = {string_literal(n)}, {s.quanto!r}' for n, s in specs.items())}, 0)"
    pending = f"venue = {string_literal(venue)} AND contract_size = 0 AND native_symbol IN ({natives})"
    (lo, hi), = client.query(  # the prices needed: the pending rows' time span and the gap
        f"SELECT toUInt32(min(t)), toUInt32(max(t)) FROM (SELECT exchange_ts AS t FROM market.trades "
        f"WHERE {pending} UNION ALL SELECT exchange_ts FROM market.quotes WHERE {pending})").result_rows
    lo, hi = max(int(lo) - MAX_GAP_S - 60, 0), int(hi) + MAX_GAP_S + 60
    window = f"exchange_ts >= toDateTime64({lo}, 6, 'UTC') AND exchange_ts < toDateTime64({hi}, 6, 'UTC')"
    own = (f"venue = {string_literal(venue)} AND (native_symbol = {string_literal(XBT_USD)} OR "
           f"(contract_size > 0 AND native_symbol IN ({natives})))")
    prices = (  # one XBT price per minute: BitMEX's own figures, else the venues' median
        f"SELECT {string_literal(venue)} AS v, toStartOfMinute(exchange_ts) AS minute, "
        "if(countIf(own) > 0, avgIf(px, own), median(px)) AS xbt FROM ("
        f"SELECT exchange_ts, if(native_symbol = {string_literal(XBT_USD)}, price, contract_size / {multiplier})"
        f" AS px, 1 AS own FROM market.trades WHERE {window} AND {own} UNION ALL "
        f"SELECT exchange_ts, price, 0 FROM market.trades WHERE {window} AND NOT ({own}) AND "
        f"symbol IN ({', '.join(map(string_literal, _USD_BTC))})"
        ") WHERE px > 0 AND isFinite(px) GROUP BY minute")
    near = f"dateDiff('second', b.minute, m) <= {MAX_GAP_S} AND b.xbt > 0"
    far = f"dateDiff('second', m, f.minute) <= {MAX_GAP_S} AND f.xbt > 0"

    def priced(table: str) -> str:  # the pending rows with `cs`: BASE per contract (0: none)
        return (
            f"SELECT r.*, round(r.q * multiIf({near} AND (NOT ({far}) OR dateDiff('second', "
            f"b.minute, m) <= dateDiff('second', m, f.minute)), b.xbt, {far}, f.xbt, 0), 12) AS cs "
            f"FROM (SELECT *, toStartOfMinute(exchange_ts) AS m, {multiplier} AS q "
            f"FROM market.{table} WHERE {pending}) AS r "
            f"ASOF LEFT JOIN ({prices}) AS b ON r.venue = b.v AND r.m >= b.minute "
            f"ASOF LEFT JOIN ({prices}) AS f ON r.venue = f.v AND r.m <= f.minute")

    converted: Counter = Counter()
    left: Counter = Counter()
    for table in ("trades", "quotes"):
        for native, done, n in client.query(
                f"SELECT native_symbol, cs > 0, count() FROM ({priced(table)}) GROUP BY 1, 2").result_rows:
            if done:
                converted[table] += n
            else:
                left[f"{venue}/{native}"] += n
    minutes = [int(m.timestamp()) for (m,) in client.query(
        f"SELECT DISTINCT m FROM ({priced('trades')}) WHERE cs > 0").result_rows]
    if converted["trades"]:
        client.command(
            f"INSERT INTO market.trades ({_TRADES}) SELECT venue, symbol, native_symbol, trade_id, "
            "price, round(native_amount * cs, 12), side, exchange_ts, received_ts, instrument_type, "
            f"native_amount, cs, inserted_ts, feed FROM ({priced('trades')}) WHERE cs > 0")
    if converted["quotes"]:
        client.command(
            f"INSERT INTO market.quotes ({_QUOTES}) SELECT venue, symbol, native_symbol, bid_price, "
            "round(native_bid_size * cs, 12), ask_price, round(native_ask_size * cs, 12), "
            "exchange_ts, received_ts, instrument_type, update_id, native_bid_size, "
            f"native_ask_size, cs, inserted_ts, feed FROM ({priced('quotes')}) WHERE cs > 0")
    for table, key in _KEYS.items():
        if converted[table]:
            client.command(
                f"ALTER TABLE market.{table} DELETE WHERE {pending} AND ({key}) IN (SELECT {key} "
                f"FROM market.{table} WHERE venue = {string_literal(venue)} AND contract_size > 0 AND "
                f"native_symbol IN ({natives}))", settings=_SYNC)
    return converted, left, minutes

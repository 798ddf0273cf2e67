"""BitMEX realtime API: tables arrive as {"table", "action", "data": [...]}. `trade` rows of a
`partial` (recent trades, once per subscription) or an `insert` are trades (dedup collapses
repeats): id `trdMatchID`, taker `side`, `size` in contracts (native_amount), amount
`homeNotional` (BitMEX's BASE figure; inverse XBT contracts are 1 USD each, so size / price).
`quote` rows -> quotes, sizes in BASE by the instrument list (bitmex_list.py; quanto ones at
the connection's XBT price, bitmex_units.py); other tables, `info`, acks, errors -> ignored.
Heartbeat: after 5 s without a frame the client sends `ping`; BitMEX answers `pong`.
Symbols (XBT reads as BTC; XBT against fiat is inverse, marked): `XBTUSD` -> `BTC-USD-INV-PERP`,
`ETHUSDT` -> `ETH-USDT-PERP`, spot `XBT_USDT` -> `BTC-USDT`; futures' month codes expire on the
month's last Friday (`XBTU21` -> `BTC-USD-INV-210924`; XBT-quoted `XRPU21` -> `XRP-BTC-210924`).
"""

from __future__ import annotations

import re

from dataflows.venues import bitmex_units as units
from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.bitmex_list import URL, listed
from dataflows.venues.common import book_top, check_trade, name_field, num, price_size, side_of
from dataflows.venues.declare import FrameError, check_ts, text_id, us_from_iso_z
from feedhouse.core.records import ParseResult, Trade

VENUE = "bitmex"
_SIDES, _TABLE = {"Buy": "buy", "Sell": "sell"}, {"trades": "trade", "quotes": "quote", "books": "orderBookL2"}
# BitMEX's quote currencies only (the shared table's TUSD would split XBTUSD as XB-TUSD)
_QUOTES = declare.quote_table("USDT", "USDC", "USD", "EUR", "XBT", "ETH")
_BTC, _XBT = {"XBT": "BTC"}, {"BTC": "XBT"}
_FUTURE = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ]\d\d)$")


def _pair(root: str) -> tuple[str, str] | None:
    """'ETHUSDT' -> ('ETH', 'USDT'); None when no BitMEX quote currency ends the root."""
    for quote in _QUOTES:
        if root.endswith(quote) and len(root) > len(quote):
            base = root[: -len(quote)]
            return _BTC.get(base, base), _BTC.get(quote, quote)


def normalize(native: str) -> str:
    upper = native.upper()
    if "_" in upper:  # spot
        base, _, quote = upper.partition("_")
        return f"{_BTC.get(base, base)}-{_BTC.get(quote, quote)}"
    if future := _FUTURE.match(upper):
        root, code = future.groups()
        expiry = ins.from_month_code(code)
        if root == "XBT":
            return f"BTC-USD-INV-{expiry}"
        pair = _pair(root)
        return _marked(f"{pair[0]}-{pair[1]}-{expiry}") if pair else f"{root}-BTC-{expiry}"
    pair = _pair(upper)
    return _marked(f"{pair[0]}-{pair[1]}-PERP") if pair else f"{upper}-PERP"


def _marked(symbol: str) -> str:  # XBT contracts against fiat are inverse (1 USD / 1 EUR each)
    return ins.inverse_symbol(symbol) if symbol.startswith(("BTC-USD-", "BTC-EUR-")) else symbol


def native(symbol: str) -> str:
    parts = ins.plain_symbol(symbol.upper()).split("-")
    if len(parts) < 2:
        return symbol  # already native
    base, quote = _XBT.get(parts[0], parts[0]), _XBT.get(parts[1], parts[1])
    if len(parts) == 2:
        return f"{base}_{quote}"
    tail = parts[2]
    if tail == "PERP":
        return base + quote
    if len(tail) == 6 and tail.isdigit():  # expiry -> month code
        tail = f"{ins.MONTH_CODES[int(tail[2:4]) - 1]}{tail[:2]}"
    return base + ("" if (base == "XBT" and quote == "USD") or quote == "XBT" else quote) + tail


def _spec(native: str) -> ins.Spec:
    """Unlisted: inverse 1 USD/EUR each; linear, quanto: size unknown (0); XBT-quoted 1."""
    if ins.is_inverse(symbol := normalize(native)):
        return ins.spec_of(symbol, 1.0, True)
    unknown = ins.kind_of(symbol) != ins.SPOT and symbol.split("-")[1] != "BTC"
    return ins.spec_of(symbol, 0.0 if unknown else 1.0)


_catalog = ins.Catalog(VENUE, _spec, lambda reply: listed(reply, normalize), (URL,))


def _stamp(entry: dict) -> int:
    if (stamp := entry["timestamp"]).__class__ is not str:
        raise FrameError(f"bad timestamp {stamp!r}")
    return check_ts(us_from_iso_z(stamp))


def _trades(data: list, received_ts: int, rates: units.Rates) -> list[Trade]:
    out = []
    for entry in data:
        price, amount = price_size(entry, "price", "size")
        side, ts = side_of(_SIDES, entry["side"]), _stamp(entry)
        spec = _catalog(sym := name_field(entry, "symbol"))
        if (base := entry.get("homeNotional")) is None:  # quanto: at the XBT price known
            out.append(ins.trade(VENUE, rates.sized(spec, ts), sym, text_id(entry["trdMatchID"]),
                                 price, amount, side, ts, received_ts))
            continue
        check_trade(price, base := num(base))  # BitMEX's own BASE figure
        size = 1.0 if spec.inverse else round(base / amount, 12)  # the multiplier it implies
        rates.traded(sym, spec, ts, price, size)
        out.append(Trade(VENUE, spec.symbol, sym, text_id(entry["trdMatchID"]), price, base,
                         side, ts, received_ts, spec.kind, amount, size))
    return out


def _quotes(data: list, received_ts: int, rates: units.Rates) -> list:
    out = []
    for entry in data:
        bid, bid_size, ask, ask_size = book_top(  # null: that side of the book is empty
            entry, "bidPrice", "bidSize", "askPrice", "askSize", True)
        sym = name_field(entry, "symbol")
        out.append(units.quote(rates, VENUE, _catalog(sym), sym, bid, bid_size, ask, ask_size,
                               _stamp(entry), received_ts))
    return out


def parse(frame: str | bytes, received_ts: int, rates=units.SHARED) -> ParseResult:
    if frame == "pong" or frame == b"pong":
        return ParseResult(ignored=1)
    msg = declare.json_object(frame)
    if (table := msg.get("table")) is not None:
        action, data = msg["action"], msg["data"]
        if data.__class__ is not list:
            raise FrameError("'data' is not a list")
        if action == "partial" or action == "insert":
            if table == "trade":
                return declare.trades_or_ignored(_trades(data, received_ts, rates))
            if table == "quote":
                return declare.quotes_or_ignored(_quotes(data, received_ts, rates))
        if table.__class__ is str and action in ("partial", "insert", "update", "delete"):
            return units.other_table(table, data, rates)  # trade/quote never update or delete
        raise FrameError(f"unknown message (table={table!r}, action={action!r})")
    if "success" in msg or "info" in msg or "error" in msg or "subscribe" in msg:
        return ParseResult(ignored=1)  # acks, welcome, errors
    raise FrameError("unknown message")


VENUES = [
    declare.venue(
        VENUE, "wss://ws.bitmex.com/realtime",
        ("ws.bitmex.com", "www.bitmex.com", "testnet.bitmex.com", "ws.testnet.bitmex.com"),
        parse, channels=_TABLE, frames=units.frames(native, _catalog),
        native=native, normalize=normalize, ping_interval_s=5.0, ping_frame="ping",
        catalog=_catalog, session=units.sessions(VENUE, parse))  # one XBT price per connection
]

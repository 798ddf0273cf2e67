"""BitMEX realtime API (`wss://ws.bitmex.com/realtime`).

Tables arrive as {"table", "action", "data": [...]}:
- `trade`: `partial` (a snapshot of recent trades, sent once per subscription) and `insert`
  (new trades); both count as trades, dedup collapses the snapshot's repeats. The id is
  `trdMatchID`, `side` the taker side. `size` is in contracts (kept as native_amount); the
  amount is `homeNotional`, BitMEX's own BASE figure (inverse XBT contracts: 1 USD each, so
  size / price; quanto and linear: the instrument's multiplier); contract_size is what one
  contract was worth (USD when inverse, else BASE).
- `quote`: best bid/ask (`partial` + `insert`) -> quotes.
- other tables (orderBookL2, ...), the welcome `info`, subscribe acks, errors -> ignored.
Heartbeat: when nothing arrives for 5 s the client sends the text `ping`; BitMEX answers
`pong` (ignored).

Symbols: perpetuals `XBTUSD` -> `BTC-USD-INV-PERP` (XBT against fiat is inverse), `ETHUSDT` ->
`ETH-USDT-PERP`; futures carry a month code, expiring on the month's last Friday (`XBTU21` ->
`BTC-USD-INV-210924`; legacy alt
futures are XBT-quoted: `XRPU21` -> `XRP-BTC-210924`); spot pairs have an underscore
(`XBT_USDT` -> `BTC-USDT`). XBT reads as BTC. Quote sizes stay in contracts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from dataflows.venues import instruments as ins
from dataflows.venues.base import Venue
from dataflows.venues.common import (
    FrameError,
    check_quote,
    check_trade,
    check_ts,
    loads,
    num,
    quote_table,
    quotes_or_ignored,
    safe_parse,
    text_id,
    trades_or_ignored,
    us_from_iso_z,
)
from feedhouse.core.records import ParseResult, Trade

VENUE = "bitmex"
_SIDES = {"Buy": "buy", "Sell": "sell"}
_TABLE = {"trades": "trade", "quotes": "quote"}
# BitMEX's quote currencies only (the shared table's TUSD would split XBTUSD as XB-TUSD)
_QUOTES = quote_table("USDT", "USDC", "USD", "EUR", "XBT", "ETH")
_FUTURE = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ]\d\d)$")


def _btc(asset: str) -> str:
    return "BTC" if asset == "XBT" else asset


def _xbt(asset: str) -> str:
    return "XBT" if asset == "BTC" else asset


def _pair(root: str) -> tuple[str, str] | None:
    """'ETHUSDT' -> ('ETH', 'USDT'); None when no BitMEX quote currency ends the root."""
    for quote in _QUOTES:
        if root.endswith(quote) and len(root) > len(quote):
            return _btc(root[: -len(quote)]), _btc(quote)
    return None


def normalize(native: str) -> str:
    upper = native.upper()
    if "_" in upper:  # spot
        base, _, quote = upper.partition("_")
        return f"{_btc(base)}-{_btc(quote)}"
    future = _FUTURE.match(upper)
    if future:
        root, code = future.groups()
        expiry = ins.from_month_code(code)
        if root == "XBT":
            return f"BTC-USD-INV-{expiry}"
        pair = _pair(root)
        return _marked(f"{pair[0]}-{pair[1]}-{expiry}") if pair else f"{root}-BTC-{expiry}"
    pair = _pair(upper)
    return _marked(f"{pair[0]}-{pair[1]}-PERP") if pair else f"{upper}-PERP"


def _marked(symbol: str) -> str:
    """XBT contracts against fiat are inverse (1 USD / 1 EUR each)."""
    inverse = symbol.startswith(("BTC-USD-", "BTC-EUR-"))
    return ins.inverse_symbol(symbol) if inverse else symbol


def native(symbol: str) -> str:
    parts = ins.plain_symbol(symbol.upper()).split("-")
    if len(parts) < 2:
        return symbol  # already native
    base, quote = _xbt(parts[0]), _xbt(parts[1])
    if len(parts) == 2:
        return f"{base}_{quote}"
    tail = parts[2]
    if tail == "PERP":
        return base + quote
    if len(tail) == 6 and tail.isdigit():  # expiry -> month code
        tail = f"{ins.MONTH_CODES[int(tail[2:4]) - 1]}{tail[:2]}"
    if base == "XBT" and quote == "USD":
        return base + tail
    if quote == "XBT":
        return base + tail
    return base + quote + tail


def _spec(native: str) -> ins.Spec:
    """XBT contracts against fiat are inverse (1 USD / 1 EUR each); linear and quanto
    contracts are valued per trade by homeNotional and have no fixed size (0: unknown,
    so quote sizes stay contracts); XBT-quoted alt futures are 1 BASE each."""
    symbol = normalize(native)
    if ins.is_inverse(symbol):
        return ins.spec_of(symbol, 1.0, True)
    unknown = ins.kind_of(symbol) != ins.SPOT and symbol.split("-")[1] != "BTC"
    return ins.spec_of(symbol, 0.0 if unknown else 1.0)


_catalog = ins.Catalog(VENUE, _spec)


def _symbol(entry: dict) -> str:
    sym = entry["symbol"]
    if sym.__class__ is not str or not sym:
        raise FrameError(f"bad symbol {sym!r}")
    return sym


def _stamp(entry: dict) -> int:
    stamp = entry["timestamp"]
    if stamp.__class__ is not str:
        raise FrameError(f"bad timestamp {stamp!r}")
    return check_ts(us_from_iso_z(stamp))


def _trades(data: list, received_ts: int) -> list[Trade]:
    out = []
    for entry in data:
        price = num(entry["price"])
        amount = num(entry["size"])
        check_trade(price, amount)
        side = _SIDES.get(entry["side"])
        if side is None:
            raise FrameError(f"bad side {entry['side']!r}")
        sym = _symbol(entry)
        spec = _catalog(sym)
        base = entry.get("homeNotional")
        if base is None:
            trade = ins.trade(VENUE, spec, sym, text_id(entry["trdMatchID"]), price, amount,
                              side, _stamp(entry), received_ts)
        else:  # BitMEX's own BASE figure (to the satoshi), and the multiplier it implies
            base = num(base)
            check_trade(price, base)
            size = 1.0 if spec.inverse else round(base / amount, 12)
            trade = Trade(VENUE, spec.symbol, sym, text_id(entry["trdMatchID"]), price, base,
                          side, _stamp(entry), received_ts, spec.kind, amount, size)
        out.append(trade)
    return out


def _side(value: object) -> float:
    return 0.0 if value is None else num(value)  # null: that side of the book is empty


def _quotes(data: list, received_ts: int) -> list:
    out = []
    for entry in data:
        bid, bid_size = _side(entry["bidPrice"]), _side(entry["bidSize"])
        ask, ask_size = _side(entry["askPrice"]), _side(entry["askSize"])
        check_quote(bid, bid_size, ask, ask_size)
        sym = _symbol(entry)
        out.append(ins.quote(
            VENUE, _catalog(sym), sym, bid, bid_size, ask, ask_size, _stamp(entry), received_ts,
        ))
    return out


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    if frame == "pong" or frame == b"pong":
        return ParseResult(ignored=1)
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    table = msg.get("table")
    if table is not None:
        action = msg["action"]
        data = msg["data"]
        if data.__class__ is not list:
            raise FrameError("'data' is not a list")
        if action == "partial" or action == "insert":
            if table == "trade":
                return trades_or_ignored(_trades(data, received_ts))
            if table == "quote":
                return quotes_or_ignored(_quotes(data, received_ts))
        if table.__class__ is str and action in ("partial", "insert", "update", "delete"):
            return ParseResult(ignored=1)  # other tables; trade/quote never update or delete
        raise FrameError(f"unknown message (table={table!r}, action={action!r})")
    if "success" in msg or "info" in msg or "error" in msg or "subscribe" in msg:
        return ParseResult(ignored=1)  # acks, welcome, errors
    raise FrameError("unknown message")


def _frames(op: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    args = [f"{_TABLE[c]}:{native(s)}" for c in channels if c in _TABLE for s in symbols]
    return [orjson.dumps({"op": op, "args": args}).decode()] if args else []


VENUES = [
    Venue(
        name=VENUE,
        url="wss://ws.bitmex.com/realtime",
        hosts=("ws.bitmex.com", "www.bitmex.com", "testnet.bitmex.com", "ws.testnet.bitmex.com"),
        parse=safe_parse(VENUE, _parse),
        subscribe=lambda s, c: _frames("subscribe", s, c),
        unsubscribe=lambda s, c: _frames("unsubscribe", s, c),
        ping_interval_s=5.0,
        ping_frame="ping",
        native_symbol=native,
        normalize_symbol=normalize,
        channels=("trades", "quotes"),
        catalog=_catalog,
    )
]

"""Kraken spot WebSocket: v2 (current: JSON objects) and v1 (arrays, as in the fixture).

v1 trade arrays carry no trade id: the id is a hash of the trade's own fields as sent
(pair, price, volume, time, side, order type), so a resent trade gets the same id.
v2 sends `trade_id` (sequential per book). Quotes: the `ticker` channel (best bid/ask).
Symbols: v1 says XBT/XDG where v2 and we say BTC/DOGE. Books: v2 `book` (books/kraken.py).
"""

from __future__ import annotations

from dataflows.venues import declare
from dataflows.venues.common import (
    FrameError,
    book_top,
    check_quote,
    int_id,
    num,
    price_size,
    side_of,
)
from dataflows.venues.declare import (
    loads,
    normalizer,
    stable_trade_id,
    us_from_decimal_s,
    us_from_iso_z,
)
from feedhouse.core.records import ParseResult, Quote, Trade

NAME = "kraken"
_CHANNEL = {"trades": "trade", "quotes": "ticker", "books": "book"}
BOOK_DEPTH = 25  # one of Kraken's 10, 25, 100, 500, 1000; its checksum covers the top 10
_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
_SIDE_V1 = {"b": "buy", "s": "sell"}
_SIDE_V2 = {"buy": "buy", "sell": "sell"}
_IGNORED_V2 = frozenset({"heartbeat", "status", "book", "ohlc", "instrument", "level3"})
_IGNORED_V1 = frozenset({"heartbeat", "systemStatus", "subscriptionStatus", "pong"})


def normalize(native: str) -> str:
    """'XBT/USD' -> 'BTC-USD'."""
    base, _, quote = native.upper().partition("/")
    if not quote:
        return base
    return f"{_ALIASES.get(base, base)}-{_ALIASES.get(quote, quote)}"


def native(symbol: str) -> str:
    """'BTC-USD' -> 'BTC/USD' (the v2 spelling)."""
    return symbol.upper().replace("-", "/")


_normalize = normalizer(normalize)


def _frames(method: str, symbols, channels) -> list[str]:
    pairs = [native(s) for s in symbols]
    return [declare.dumps({"method": method, "params": {"channel": c, "symbol": pairs}
                           | ({"depth": BOOK_DEPTH} if c == "book" else {})}) for c in channels]


def _v1(msg: list, received_ts: int) -> ParseResult:
    if len(msg) < 4:
        raise FrameError("array message with fewer than 4 elements")
    channel, pair = msg[-2], msg[-1]
    if channel.__class__ is not str or pair.__class__ is not str:
        raise FrameError("channel name / pair is not a string")
    if channel == "trade":
        symbol = _normalize(pair)
        trades = []
        for item in msg[1]:
            price_s, volume_s, time_s, side_s, order_type = item[0], item[1], item[2], item[3], item[4]
            if price_s.__class__ is not str or volume_s.__class__ is not str:
                raise FrameError("trade price/volume is not a string")
            price, amount = price_size(item, 0, 1)
            side = side_of(_SIDE_V1, side_s)
            ident = stable_trade_id(pair, price_s, volume_s, time_s, side_s, order_type)
            trades.append(Trade(
                NAME, symbol, pair, ident, price, amount, side,
                us_from_decimal_s(time_s), received_ts, "spot", amount, 1.0,
            ))
        if not trades:
            raise FrameError("trade message without trades")
        return ParseResult(trades=trades)
    if channel == "ticker":
        data = msg[1]
        bid, bid_size = num(data["b"][0]), num(data["b"][2])
        ask, ask_size = num(data["a"][0]), num(data["a"][2])
        check_quote(bid, bid_size, ask, ask_size)
        return ParseResult(quotes=[Quote(
            NAME, _normalize(pair), pair, bid, bid_size, ask, ask_size,
            received_ts, received_ts,  # v1 tickers carry no time
        )])
    return ParseResult(ignored=1)  # book-*, ohlc-*, spread


def _v2(msg: dict, received_ts: int) -> ParseResult:
    channel = msg.get("channel")
    if channel == "trade":
        trades = []
        for item in msg["data"]:
            price, amount = price_size(item, "price", "qty")
            side = side_of(_SIDE_V2, item["side"])
            ident = int_id(item["trade_id"])
            pair = item["symbol"]
            trades.append(Trade(
                NAME, _normalize(pair), pair, ident, price, amount, side,
                us_from_iso_z(item["timestamp"]), received_ts, "spot", amount, 1.0,
            ))
        return ParseResult(trades=trades, ignored=0 if trades else 1)
    if channel == "ticker":
        quotes = []
        for item in msg["data"]:
            bid, bid_size, ask, ask_size = book_top(item, "bid", "bid_qty", "ask", "ask_qty")
            pair = item["symbol"]
            when = item.get("timestamp")
            quotes.append(Quote(
                NAME, _normalize(pair), pair, bid, bid_size, ask, ask_size,
                us_from_iso_z(when) if when else received_ts, received_ts,
            ))
        return ParseResult(quotes=quotes, ignored=0 if quotes else 1)
    if channel in _IGNORED_V2 or "method" in msg:
        if msg.get("success") is False:
            raise FrameError(f"venue error: {str(msg.get('error'))[:200]}")
        return ParseResult(ignored=1)
    event = msg.get("event")
    if event in _IGNORED_V1:
        if msg.get("status") == "error":
            raise FrameError(f"venue error: {str(msg.get('errorMessage'))[:200]}")
        return ParseResult(ignored=1)
    raise FrameError(f"unknown message (channel={channel!r}, event={event!r})")


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = loads(frame)
    if msg.__class__ is list:
        return _v1(msg, received_ts)
    if msg.__class__ is dict:
        return _v2(msg, received_ts)
    raise FrameError("not a JSON object or array")


VENUES = [
    declare.venue(
        NAME, "wss://ws.kraken.com/v2", ("ws.kraken.com", "beta-ws.kraken.com"), _parse,
        channels=_CHANNEL, frames=_frames, native=native, normalize=normalize,
        # the server sends heartbeats each second; a ping keeps idle links honest
        ping_interval_s=30.0, ping_frame='{"method":"ping"}')
]

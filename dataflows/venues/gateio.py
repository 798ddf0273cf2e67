"""Gate.io (Gate) spot WebSocket v4 (`wss://api.gateio.ws/ws/v4/`).

trades: `spot.trades` updates, one trade per frame (`id`, taker `side`, `create_time_ms` as a
fractional-millisecond string); quotes: `spot.book_ticker` (best bid/ask with sizes).
Subscribe acks, order-book updates, candlesticks, tickers and `spot.pong` are ignored.
The application ping (`spot.ping`) must carry the current time, which a static ping frame
cannot, so the client relies on WebSocket protocol pings (the server answers those too);
a `spot.ping` from the server is answered with `spot.pong`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from dataflows.venues.base import Venue
from dataflows.venues.common import (
    FrameError,
    check_quote,
    check_trade,
    check_ts,
    join_separated,
    loads,
    ms_us,
    normalizer,
    num,
    safe_parse,
    text_id,
    trades_or_ignored,
)
from dataflows.venues.instruments import update_id
from feedhouse.core.records import ParseResult, Quote, Trade

VENUE = "gateio"
_SIDES = {"buy": "buy", "sell": "sell"}
_CHANNEL = {"trades": "spot.trades", "quotes": "spot.book_ticker"}
_TRADE_CHANNELS = ("spot.trades", "spot.trades_v2")  # v2 carries the same trade payload


def normalize(native: str) -> str:
    """'BTC_USDT' -> 'BTC-USDT'."""
    return join_separated(native, "_")


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'BTC_USDT'."""
    return symbol.upper().replace("-", "_")


_normalize = normalizer(normalize)


def _symbol(value: object) -> str:
    if value.__class__ is not str or not value:
        raise FrameError(f"bad currency pair {value!r}")
    return value  # type: ignore[return-value]


def _trade(result: dict, received_ts: int) -> Trade:
    price = num(result["price"])
    amount = num(result["amount"])
    check_trade(price, amount)
    side = _SIDES.get(result["side"])
    if side is None:
        raise FrameError(f"bad side {result['side']!r}")
    sym = _symbol(result["currency_pair"])
    stamp = result.get("create_time_ms")
    if stamp is not None:  # "1619093543708.2642": milliseconds with a fraction
        exchange_ts = check_ts(int(round(num(stamp) * 1000)))
    else:
        exchange_ts = ms_us(result["create_time"]) * 1000  # whole seconds
    return Trade(
        VENUE, _normalize(sym), sym, text_id(result["id"]), price, amount, side,
        exchange_ts, received_ts, "spot", amount, 1.0,
    )


def _quote(result: dict, received_ts: int) -> Quote:
    bid, bid_size, ask, ask_size = (
        num(result["b"]), num(result["B"]), num(result["a"]), num(result["A"])
    )
    check_quote(bid, bid_size, ask, ask_size)
    sym = _symbol(result["s"])
    stamp = result.get("t")
    return Quote(
        VENUE, _normalize(sym), sym, bid, bid_size, ask, ask_size,
        ms_us(stamp) if stamp is not None else received_ts, received_ts, "spot",
        update_id(result.get("u")),  # the order book's update id
    )


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    channel = msg.get("channel")
    event = msg.get("event")
    if channel.__class__ is not str:
        raise FrameError(f"unknown message (channel={channel!r})")
    if event == "update":
        result = msg["result"]
        if channel in _TRADE_CHANNELS:
            # one trade per update; a list is accepted too (batched pushes)
            if result.__class__ is list:
                return trades_or_ignored([_trade(r, received_ts) for r in result])
            return ParseResult(trades=[_trade(result, received_ts)])
        if channel == "spot.book_ticker":
            return ParseResult(quotes=[_quote(result, received_ts)])
        if channel.startswith("spot."):
            return ParseResult(ignored=1)  # order books, candlesticks, tickers
    elif event in ("subscribe", "unsubscribe", "") or channel in ("spot.pong", "spot.ping"):
        return ParseResult(ignored=1)  # acks (including error acks) and pongs
    raise FrameError(f"unknown message (channel={channel!r}, event={event!r})")


def _frames(event: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    now = int(time.time())
    return [
        orjson.dumps({
            "time": now, "channel": _CHANNEL[c], "event": event,
            "payload": [native(s) for s in symbols],
        }).decode()
        for c in channels
        if c in _CHANNEL and symbols
    ]


def answer_ping(frame: str | bytes) -> str | None:
    """A server `spot.ping` is answered with `spot.pong` carrying the same time."""
    if len(frame) > 256 or b"spot.ping" not in (
        frame if isinstance(frame, bytes) else frame.encode()
    ):
        return None
    try:
        msg = loads(frame)
        if msg.get("channel") != "spot.ping":
            return None
        return orjson.dumps({"time": msg.get("time", int(time.time())),
                             "channel": "spot.pong"}).decode()
    except (ValueError, AttributeError):
        return None


VENUES = [
    Venue(
        name=VENUE,
        url="wss://api.gateio.ws/ws/v4/",
        hosts=("api.gateio.ws",),
        parse=safe_parse(VENUE, _parse),
        subscribe=lambda s, c: _frames("subscribe", s, c),
        unsubscribe=lambda s, c: _frames("unsubscribe", s, c),
        answer_ping=answer_ping,
        native_symbol=native,
        normalize_symbol=normalize,
        channels=("trades", "quotes"),
    )
]

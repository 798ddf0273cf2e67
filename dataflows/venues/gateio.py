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
from typing import Literal

import numpy as np

from dataflows.venues import checked, declare, typed
from dataflows.venues.common import (
    MAX_TS_US,
    book_top,
    num,
    price_size,
    side_of,
    trades_or_ignored,
)
from dataflows.venues.declare import FrameError, check_ts, json_object, ms_us, text_id
from dataflows.venues.instruments import update_id
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult, Quote, Trade

VENUE = "gateio"
_SIDES = {"buy": "buy", "sell": "sell"}
_CHANNEL = {"trades": "spot.trades", "quotes": "spot.book_ticker"}
_TRADE_CHANNELS = ("spot.trades", "spot.trades_v2")  # v2 carries the same trade payload


def normalize(native: str) -> str:
    """'BTC_USDT' -> 'BTC-USDT'."""
    return declare.join_separated(native, "_")


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'BTC_USDT'."""
    return symbol.upper().replace("-", "_")


_normalize = declare.normalizer(normalize)


def _symbol(value: object) -> str:
    if value.__class__ is not str or not value:
        raise FrameError(f"bad currency pair {value!r}")
    return value  # type: ignore[return-value]


def _trade(result: dict, received_ts: int) -> Trade:
    price, amount = price_size(result, "price", "amount")
    side = side_of(_SIDES, result["side"])
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
    bid, bid_size, ask, ask_size = book_top(result, "b", "B", "a", "A")
    sym = _symbol(result["s"])
    stamp = result.get("t")
    return Quote(
        VENUE, _normalize(sym), sym, bid, bid_size, ask, ask_size,
        ms_us(stamp) if stamp is not None else received_ts, received_ts, "spot",
        update_id(result.get("u")),  # the order book's update id
    )


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
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


def _frames(event: str, symbols, channels) -> list[str]:
    now = int(time.time())
    payload = [native(s) for s in symbols]
    return [declare.dumps({"time": now, "channel": c, "event": event, "payload": payload})
            for c in channels if symbols]


def _pong(msg) -> str | None:
    """A server `spot.ping` is answered with `spot.pong` carrying the same time."""
    if msg.get("channel") != "spot.ping":
        return None
    return declare.dumps({"time": msg.get("time", int(time.time())), "channel": "spot.pong"})


# Fast path (parse_many): one-trade updates, typed (dataflows/venues/typed.py), only the
# fields `_parse` reads; batched pushes and frames it refuses go through `_parse`.
_Result = typed.struct("_Result", [("id", typed.Int), ("create_time_ms", float), ("side", str),
                                   ("currency_pair", str), ("amount", float), ("price", float)])
_decode = typed.decoder(typed.struct("_Update", [
    ("channel", Literal[_TRADE_CHANNELS]), ("event", Literal["update"]), ("result", _Result)]))
_spec = checked.spot(_normalize)


_read = checked.Reader(("currency_pair", "o"), ("id", "t"), ("price", "f"), ("amount", "f"),
                       ("side", "m", _SIDES, str), ("create_time_ms", "f"))


def _build(decoded: list, received: list[int]):
    ok, (natives, ids, price, size, sides, ms) = _read(checked.attribute(decoded, "result"))
    # round(): to the nearest, half to even; NaN (0) and beyond MAX_TS_US are refused
    ts = np.rint(np.clip(np.nan_to_num(ms * 1000), 0, MAX_TS_US)).astype(np.int64)
    checked.within(ts, ok, MARKET_EPOCH_US, MAX_TS_US)
    ok &= [bool(x) for x in natives]
    return checked.trades(VENUE, ok, _spec, natives, ids, price, size, sides, ts, received)


VENUES = [
    declare.venue(
        VENUE, "wss://api.gateio.ws/ws/v4/", ("api.gateio.ws",), _parse, channels=_CHANNEL,
        frames=_frames, native=native, normalize=normalize,
        answer_ping=declare.ping_answer("spot.ping", 256, _pong), fast=("spot.trades", _decode, _build))
]

"""Bitstamp v2 WebSocket: `trade` events on `live_trades_<pair>` channels.

`type` 0 = buy, 1 = sell (the taker side); `microtimestamp` is the trade time in µs.
Prices/amounts come both as numbers and as exact strings; we read the strings.
"""

from __future__ import annotations

from typing import Literal

from dataflows.venues import checked, declare, typed
from dataflows.venues.common import MAX_TS_US, check_trade, int_id, num
from dataflows.venues.declare import FrameError, json_object, normalizer, split_concatenated
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult, Trade

NAME = "bitstamp"
_PREFIX = "live_trades_"
_SIDES = {0: "buy", 1: "sell"}
_normalize = normalizer(split_concatenated)


def native(symbol: str) -> str:
    return symbol.lower().replace("-", "")


def _frames(event: str, symbols, channels) -> list[str]:
    return [declare.dumps({"event": event, "data": {"channel": f"{c}{native(s)}"}})
            for c in channels for s in symbols]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    event = msg.get("event")
    if event == "trade":
        channel = msg["channel"]
        if channel.__class__ is not str or not channel.startswith(_PREFIX):
            raise FrameError(f"trade on unexpected channel {channel!r}")
        data = msg["data"]
        price = num(data["price_str"] if "price_str" in data else data["price"])
        amount = num(data["amount_str"] if "amount_str" in data else data["amount"])
        check_trade(price, amount)
        side = _SIDES.get(data["type"])
        if side is None or data["type"].__class__ is not int:
            raise FrameError(f"bad trade type {data['type']!r}")
        ident = int_id(data["id"])
        micros = data["microtimestamp"]
        if micros.__class__ is not str or not micros.isdigit():
            raise FrameError(f"bad microtimestamp {micros!r}")
        pair = channel[len(_PREFIX):]
        return ParseResult(trades=[Trade(
            NAME, _normalize(pair), pair, ident, price, amount, side, int(micros),
            received_ts, "spot", amount, 1.0,
        )])
    if event.__class__ is str and (event == "data" or event.startswith("bts:")):
        if event == "bts:error":
            raise FrameError(f"venue error: {str(msg.get('data'))[:200]}")
        return ParseResult(ignored=1)  # order books, acks, heartbeats, reconnect requests
    raise FrameError(f"unknown event {event!r}")


# Fast path (parse_many): trade events, typed (dataflows/venues/typed.py), only the fields
# `_parse` reads (the exact strings, not the numbers); frames it refuses go through `_parse`.
_Data = typed.struct("_Data", [("id", typed.Int), ("amount_str", float), ("price_str", float),
                               ("type", typed.Int), ("microtimestamp", str)])
_decode = typed.decoder(typed.struct("_Trade", [
    ("data", _Data), ("channel", str), ("event", Literal["trade"])]))
_spec = checked.spot(_normalize)


_read = checked.Reader(("id", "t"), ("price_str", "f"), ("amount_str", "f"),
                       ("type", "m", _SIDES, int), ("microtimestamp", "d"))


def _build(decoded: list, received: list[int]):
    ok, (ids, price, size, sides, ts) = _read(checked.attribute(decoded, "data"))
    checked.within(ts, ok, MARKET_EPOCH_US, MAX_TS_US)
    channels = checked.attribute(decoded, "channel")
    ok &= [c.startswith(_PREFIX) for c in channels]
    natives = [c[len(_PREFIX):] for c in channels]
    return checked.trades(NAME, ok, _spec, natives, ids, price, size, sides, ts, received)


VENUES = [
    declare.venue(
        NAME, "wss://ws.bitstamp.net", ("ws.bitstamp.net",), _parse,
        channels={"trades": _PREFIX}, frames=_frames, ops=("bts:subscribe", "bts:unsubscribe"),
        native=native, normalize=split_concatenated, ping_interval_s=30.0,
        ping_frame='{"event":"bts:heartbeat"}', fast=('"trade"', _decode, _build))
]

"""Bybit v5 public WebSocket (`publicTrade.<symbol>`) and the legacy `realtime_public`
`trade.<symbol>` format of the fixture.

v5: data items {T ms, s, S Buy/Sell (taker), v, p, i}; legacy: {symbol, price, size,
side, trade_time_ms | timestamp, trade_id}. The client sends {"op":"ping"} every 20 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from dataflows.venues.base import Venue
from dataflows.venues.common import (
    FrameError,
    check_trade,
    loads,
    normalizer,
    num,
    safe_parse,
    split_concatenated,
    us_from_iso_z,
)
from feedhouse.core.records import ParseResult, Trade

NAME = "bybit"
_SIDES = {"Buy": "buy", "Sell": "sell"}


_MONTH_CODES = frozenset("FGHJKMNQUVXZ")  # futures month letters: BTCUSDH23 = March 2023


def normalize(native: str) -> str:
    """'BTCUSDT' -> 'BTC-USDT'; USDC perpetual 'BTCPERP' -> 'BTC-PERP'; inverse futures
    'BTCUSDH23' -> 'BTC-USD-H23'; dated linear futures are already dashed ('BTC-29DEC23')."""
    upper = native.upper()
    if "-" in upper:
        return upper
    if upper.endswith("PERP") and len(upper) > 4:
        return f"{upper[:-4]}-PERP"
    if len(upper) > 6 and upper[-3] in _MONTH_CODES and upper[-2:].isdigit():
        return f"{split_concatenated(upper[:-3])}-{upper[-3:]}"
    return split_concatenated(upper)


_normalize = normalizer(normalize)


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'BTCUSDT'; dated linear futures keep their dash ('BTC-29DEC23')."""
    parts = symbol.upper().split("-")
    if len(parts) == 2 and parts[1][:1].isdigit():
        return "-".join(parts)
    return "".join(parts)


def _frames(op: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    args = [f"publicTrade.{native(s)}" for c in channels if c == "trades" for s in symbols]
    return [orjson.dumps({"op": op, "args": args}).decode()] if args else []


def _side(value: object) -> str:
    side = _SIDES.get(value)  # type: ignore[arg-type]
    if side is None:
        raise FrameError(f"bad side {value!r}")
    return side


def _id(value: object) -> str:
    if value.__class__ is str and value:
        return value  # type: ignore[return-value]
    if value.__class__ is int:
        return str(value)
    raise FrameError(f"bad trade id {value!r}")


def _ms(value: object) -> int:
    if value.__class__ is int and value > 0:  # type: ignore[operator]
        return value * 1000  # type: ignore[operator]
    if value.__class__ is str and value.isdigit():  # type: ignore[union-attr]
        return int(value) * 1000  # type: ignore[arg-type]
    raise FrameError(f"bad ms timestamp {value!r}")


def _v5(data: list, received_ts: int) -> list[Trade]:
    trades = []
    for item in data:
        price, amount = num(item["p"]), num(item["v"])
        check_trade(price, amount)
        sym = item["s"]
        trades.append(Trade(
            NAME, _normalize(sym), sym, _id(item["i"]), price, amount, _side(item["S"]),
            _ms(item["T"]), received_ts,
        ))
    return trades


def _legacy(data: list, received_ts: int) -> list[Trade]:
    trades = []
    for item in data:
        price, amount = num(item["price"]), num(item["size"])
        check_trade(price, amount)
        sym = item["symbol"]
        when = item.get("trade_time_ms")
        ts = _ms(when) if when is not None else us_from_iso_z(item["timestamp"])
        trades.append(Trade(
            NAME, _normalize(sym), sym, _id(item["trade_id"]), price, amount,
            _side(item["side"]), ts, received_ts,
        ))
    return trades


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    topic = msg.get("topic")
    if topic is not None:
        if topic.__class__ is not str:
            raise FrameError(f"bad topic {topic!r}")
        if topic.startswith("publicTrade."):
            trades = _v5(msg["data"], received_ts)
        elif topic.startswith("trade."):
            trades = _legacy(msg["data"], received_ts)
        else:
            return ParseResult(ignored=1)  # order books, tickers, klines
        return ParseResult(trades=trades, ignored=0 if trades else 1)
    if msg.get("success") is False:
        raise FrameError(f"venue error: {str(msg.get('ret_msg'))[:200]}")
    if "success" in msg or "op" in msg:
        return ParseResult(ignored=1)  # subscribe acks, pongs
    raise FrameError("unknown message (no topic)")


VENUES = [
    Venue(
        name=NAME,
        # v5 public has one path per market (spot, linear, inverse); the fixture's
        # realtime_public was the USDT perpetuals, now /v5/public/linear.
        url="wss://stream.bybit.com/v5/public/linear",
        hosts=("stream.bybit.com", "stream.bytick.com"),
        parse=safe_parse(NAME, _parse),
        subscribe=lambda symbols, channels: _frames("subscribe", symbols, channels),
        unsubscribe=lambda symbols, channels: _frames("unsubscribe", symbols, channels),
        ping_interval_s=20.0,
        ping_frame='{"op":"ping"}',
        native_symbol=native,
        normalize_symbol=normalize,
        channels=("trades",),
    )
]

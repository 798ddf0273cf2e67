"""Coinbase Exchange `ws-feed`: `match`/`last_match` trades, `ticker` quotes.

`side` on a match is the MAKER's side, so the taker side is its opposite. Every message
carries the product's `sequence` (the source uses it for gap detection); the parser does
not need it. Product ids are already BASE-QUOTE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec
import orjson

from dataflows.venues.base import Venue
from dataflows.venues.common import (
    INF,
    FrameError,
    OrjsonInt,
    check_quote,
    check_trade,
    fast_many,
    loads,
    normalizer,
    num,
    safe_parse,
    us_from_iso_z,
)
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult, Quote, Trade

NAME = "coinbase"
_CHANNEL = {"trades": "matches", "quotes": "ticker"}
_TAKER = {"buy": "sell", "sell": "buy"}  # maker side -> taker side
_symbol = normalizer(str.upper)  # product ids are BASE-QUOTE already; checked once each
_IGNORED = frozenset(
    {"subscriptions", "l2update", "snapshot", "heartbeat", "received", "open", "done",
     "change", "activate", "status", "auction", "rfq_match", "l2update_batch"}
)


def _frames(kind: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    msg = {
        "type": kind,
        "product_ids": [s.upper() for s in symbols],
        "channels": [_CHANNEL[c] for c in channels],
    }
    return [orjson.dumps(msg).decode()]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    kind = msg.get("type")
    if kind == "match" or kind == "last_match":
        price = num(msg["price"])
        amount = num(msg["size"])
        check_trade(price, amount)
        side = _TAKER.get(msg["side"])
        if side is None:
            raise FrameError(f"bad side {msg['side']!r}")
        ident = msg["trade_id"]
        if ident.__class__ is not int:
            raise FrameError(f"trade id is not an integer: {ident!r}")
        product = msg["product_id"]
        return ParseResult(trades=[Trade(
            NAME, _symbol(product), product, str(ident), price, amount, side,
            us_from_iso_z(msg["time"]), received_ts,
        )])
    if kind == "ticker":
        bid = num(msg["best_bid"])
        ask = num(msg["best_ask"])
        # sizes arrived in the feed in 2022; older tickers have none (0 = not given)
        bid_size = num(msg.get("best_bid_size", 0.0))
        ask_size = num(msg.get("best_ask_size", 0.0))
        check_quote(bid, bid_size, ask, ask_size)
        product = msg["product_id"]
        when = msg.get("time")
        return ParseResult(quotes=[Quote(
            NAME, _symbol(product), product, bid, bid_size, ask, ask_size,
            us_from_iso_z(when) if when else received_ts, received_ts,
        )])
    if kind in _IGNORED:
        return ParseResult(ignored=1)
    if kind == "error":
        raise FrameError(f"venue error: {str(msg.get('message'))[:200]}")
    raise FrameError(f"unknown message type {kind!r}")


# Fast path (parse_many): match frames through a typed msgspec decoder. Every field is
# declared and typed (unknown fields refused), so it validates the whole frame as strictly
# as orjson + `_parse` do; frames it refuses go through `_parse`.
class _Match(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["match", "last_match"]
    trade_id: OrjsonInt
    maker_order_id: str
    taker_order_id: str
    side: str
    size: str
    price: str
    product_id: str
    sequence: OrjsonInt
    time: str


_decode_match = msgspec.json.Decoder(_Match).decode


_new = tuple.__new__  # Trade(...) without the NamedTuple's Python-level __new__


def _fast(frame: str | bytes, received_ts: int, trades: list) -> int:
    msg = _decode_match(frame)
    price, amount = float(msg.price), float(msg.size)
    if not (0.0 < price < INF and 0.0 < amount < INF):  # check_trade, inline
        return 0
    ts = us_from_iso_z(msg.time)
    if ts < MARKET_EPOCH_US:  # the slow path says why
        return 0
    product = msg.product_id
    trades.append(_new(Trade, (
        NAME, _symbol(product), product, str(msg.trade_id), price, amount, _TAKER[msg.side],
        ts, received_ts,
    )))
    return 1


_safe_parse = safe_parse(NAME, _parse)

VENUES = [
    Venue(
        name=NAME,
        url="wss://ws-feed.exchange.coinbase.com",
        hosts=("ws-feed.exchange.coinbase.com", "ws-feed.pro.coinbase.com"),
        parse=_safe_parse,
        parse_many=fast_many(_safe_parse, 'match"', _fast),  # "match" / "last_match"
        subscribe=lambda symbols, channels: _frames("subscribe", symbols, channels),
        unsubscribe=lambda symbols, channels: _frames("unsubscribe", symbols, channels),
        native_symbol=str.upper,
        normalize_symbol=str.upper,
        channels=("trades", "quotes"),
    )
]

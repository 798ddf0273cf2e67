"""Coinbase Exchange `ws-feed` (venue `coinbase_exchange`): `match`/`last_match` trades,
`ticker` quotes. Coinbase Advanced Trade (venue `coinbase`) is coinbase_advanced.py; a feed
configured as `coinbase` with a ws-feed URL is served by this adapter (chosen by URL).

`side` on a match is the MAKER's side, so the taker side is its opposite. Every message
carries the product's `sequence`, which jumps by design on the matches/ticker channels;
`trade_id` is consecutive per product instead, and that is the gap check (sequence_of).
Product ids are already BASE-QUOTE (spot).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from dataflows.venues import checked, declare, typed
from dataflows.venues import instruments as ins
from dataflows.venues.common import (
    MAX_TS_US,
    check_quote,
    int_id,
    num,
    price_size,
    side_of,
)
from dataflows.venues.declare import FrameError, json_object, us_from_iso_z
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult

NAME = "coinbase_exchange"
HOSTS = ("ws-feed.exchange.coinbase.com", "ws-feed.pro.coinbase.com")
_CHANNEL = {"trades": "matches", "quotes": "ticker", "books": "level2_batch"}
_MATCHES = ("match", "last_match")
_TAKER = {"buy": "sell", "sell": "buy"}  # maker side -> taker side
_spec = ins.simple(NAME, str.upper)  # product ids are BASE-QUOTE already; checked once each
_IGNORED = frozenset(
    {"subscriptions", "l2update", "snapshot", "heartbeat", "received", "open", "done",
     "change", "activate", "status", "auction", "rfq_match", "l2update_batch"}
)


def _frames(kind: str, symbols, channels) -> list[str]:
    return [declare.dumps({"type": kind, "product_ids": [s.upper() for s in symbols],
                   "channels": channels})]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    kind = msg.get("type")
    if kind == "match" or kind == "last_match":
        price, amount = price_size(msg, "price", "size")
        side = side_of(_TAKER, msg["side"])
        ident = int_id(msg["trade_id"])
        product = msg["product_id"]
        return ParseResult(trades=[ins.trade(
            NAME, _spec(product), product, ident, price, amount, side,
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
        seq = msg.get("sequence", 0)  # the product's sequence: this update's id
        return ParseResult(quotes=[ins.quote(
            NAME, _spec(product), product, bid, bid_size, ask, ask_size,
            us_from_iso_z(when) if when else received_ts, received_ts,
            seq if seq.__class__ is int and 0 <= seq < 2**63 else 0,
        )])
    if kind in _IGNORED:
        return ParseResult(ignored=1)
    if kind == "error":
        raise FrameError(f"venue error: {str(msg.get('message'))[:200]}")
    raise FrameError(f"unknown message type {kind!r}")


# Fast path (parse_many): match frames, typed (dataflows/venues/typed.py), only the fields
# `_parse` reads (not the order ids or the sequence); frames it refuses go through `_parse`.
class _Match(msgspec.Struct, tag_field="type", tag="match", gc=False):
    trade_id: typed.Int
    side: Literal["buy", "sell"]  # _TAKER's keys, as the Literal's own str (fast lookups)
    size: float
    price: float
    product_id: str
    time: str


class _LastMatch(_Match, tag="last_match", gc=False):
    pass


_decode = typed.decoder(_Match | _LastMatch)


def _us(when: str) -> int:
    """One time as `_parse` reads it, -1 when it refuses the text (the frame goes through
    `_parse`): the rare shapes checked.iso_z leaves to the per-frame reader."""
    try:
        return us_from_iso_z(when)
    except Exception:  # noqa: BLE001 - parse says why
        return -1


_read = checked.Reader(("product_id", "o"), ("trade_id", "t"), ("price", "f"), ("size", "f"),
                       ("side", "m", _TAKER, str), ("time", "z", _us))


def _build(decoded: list, received: list[int]):
    ok, (natives, ids, price, size, sides, ts) = _read(decoded)
    checked.within(ts, ok, MARKET_EPOCH_US, MAX_TS_US)
    return checked.trades(NAME, ok, _spec, natives, ids, price, size, sides, ts, received)


def _match(msg) -> list[tuple[str, int]]:
    """match/last_match `trade_id`s are consecutive per product."""
    return [(msg["product_id"], int(msg["trade_id"]))] if msg.get("type") in _MATCHES else []


VENUES = [
    declare.venue(
        NAME, "wss://ws-feed.exchange.coinbase.com", HOSTS, _parse, channels=_CHANNEL,
        frames=_frames, native=str.upper, normalize=str.upper,
        fast=('match"', _decode, _build),  # "match" / "last_match"
        sequence_of=declare.sequence_check("match", _match))
]

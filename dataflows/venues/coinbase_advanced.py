"""Coinbase Advanced Trade market data (`wss://advanced-trade-ws.coinbase.com`), venue
`coinbase`. The Exchange `ws-feed` is venue `coinbase_exchange` (coinbase.py); a `coinbase`
feed whose URL is a ws-feed host is served by that adapter (`select`), so configs written
for the Exchange feed keep working.

Every message is {"channel", "client_id", "timestamp", "sequence_num", "events": [...]}:
- `market_trades`: events[].trades[] {trade_id, product_id, price, size, side, time};
  `side` is the MAKER's side (BUY/SELL, as documented), so the taker side is its opposite;
- `ticker`: events[].tickers[] with best_bid/best_bid_quantity/best_ask/best_ask_quantity,
  stamped by the message `timestamp` -> quotes;
- `subscriptions`, `heartbeats` (subscribed to keep quiet channels open), other channels
  -> ignored; {"type": "error"} -> invalid. `sequence_num` rises by one per message of a
  connection: the gap check. Frames of the Exchange format go to coinbase.py's parser.
Products: spot `BTC-USD`; INTX perpetuals `BTC-PERP-INTX` -> `BTC-USDC-PERP` (USDC-settled).
"""

from __future__ import annotations

from dataflows.venues import coinbase as exchange
from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import check_quote, num, price_size, side_of
from dataflows.venues.declare import FrameError, json_object, us_from_iso_z
from feedhouse.core.records import ParseResult

NAME = "coinbase"
_CHANNEL = {"trades": "market_trades", "quotes": "ticker"}
_TAKER = {"BUY": "sell", "SELL": "buy"}  # maker side -> taker side
_IGNORED = frozenset({"subscriptions", "heartbeats", "l2_data", "candles", "status",
                      "ticker_batch", "user", "futures_balance_summary"})


def normalize(product: str) -> str:
    upper = product.upper()
    if upper.endswith("-PERP-INTX"):
        return f"{upper[:-10]}-USDC-PERP"
    return upper


def native(symbol: str) -> str:
    upper = symbol.upper()
    if upper.endswith("-USDC-PERP"):
        return f"{upper[:-10]}-PERP-INTX"
    return upper


_spec = ins.simple(NAME, normalize)


def _trades(events: list, received_ts: int) -> list:
    out = []
    for event in events:
        for item in event.get("trades") or ():
            price, size = price_size(item, "price", "size")
            side = side_of(_TAKER, item["side"])
            ident, product = item["trade_id"], item["product_id"]
            if ident.__class__ is not str or not 0 < len(ident) <= 128:
                raise FrameError(f"bad trade id {ident!r}"[:120])
            out.append(ins.trade(NAME, _spec(product), product, ident, price, size, side,
                                 us_from_iso_z(item["time"]), received_ts))
    return out


def _quotes(events: list, stamp: int, received_ts: int) -> list:
    out = []
    for event in events:
        for item in event.get("tickers") or ():
            bid, ask = num(item["best_bid"]), num(item["best_ask"])
            bid_size, ask_size = num(item["best_bid_quantity"]), num(item["best_ask_quantity"])
            check_quote(bid, bid_size, ask, ask_size)
            product = item["product_id"]
            out.append(ins.quote(NAME, _spec(product), product, bid, bid_size, ask, ask_size,
                                 stamp, received_ts))
    return out


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    channel = msg.get("channel")
    if channel == "market_trades" or channel == "ticker":
        events = msg["events"]
        if events.__class__ is not list:
            raise FrameError("'events' is not a list")
        if channel == "market_trades":
            records = ParseResult(trades=_trades(events, received_ts))
        else:
            records = ParseResult(quotes=_quotes(events, us_from_iso_z(msg["timestamp"]), received_ts))
        return records if records.trades or records.quotes else ParseResult(ignored=1)
    if channel in _IGNORED:
        return ParseResult(ignored=1)
    if channel is None and msg.get("type") == "error":
        raise FrameError(f"venue error: {str(msg.get('message'))[:200]}")
    if channel is None and "type" in msg:
        return exchange.VENUES[0].parse(frame, received_ts)  # an Exchange ws-feed frame
    raise FrameError(f"unknown message (channel={channel!r})")


def _frames(kind: str, symbols, names) -> list[str]:
    products = [native(s) for s in symbols]
    if kind == "subscribe" and names:
        names = [*names, "heartbeats"]  # keeps quiet products' channels open
    return [declare.dumps({"type": kind, "product_ids": products, "channel": c}) for c in names]


def _select(url: str) -> str:
    return exchange.NAME if any(host in url for host in exchange.HOSTS) else NAME


VENUES = [
    declare.venue(
        NAME, "wss://advanced-trade-ws.coinbase.com", ("advanced-trade-ws.coinbase.com",),
        _parse, channels=_CHANNEL, frames=_frames, native=native, normalize=normalize,
        # Exchange match frames (a coinbase feed on a ws-feed recording): their fast path
        fast=('match"', exchange._decode, exchange._build), select=_select,
        # `sequence_num` counts the messages of a connection: a jump is a lost message
        sequence_of=declare.sequence_check("sequence_num", lambda msg: [
            ("connection", seq)] if (seq := msg["sequence_num"]).__class__ is int else []))
]

"""OKX v5 public WebSocket: `trades` channel (taker side given), `tickers` for best bid/ask.
The client sends the text `ping` every <30 s and gets the text `pong` (not JSON).
Instrument ids are BASE-QUOTE(-YYMMDD(-STRIKE-C|P)), our form, except perpetual swaps:
`BTC-USDT-SWAP` -> `BTC-USDT-PERP`; inverse (coin-margined, USD) swaps and futures are marked:
`BTC-USD-SWAP` -> `BTC-USD-INV-PERP`, `BTC-USD-220527` -> `BTC-USD-INV-220527`. Swap, futures
and option sizes are contracts of ctVal x ctMult (public/instruments): inverse ones in USD
(BTC 100, others 10), linear and options in BASE; without the instrument list a linear
contract's size is unknown and its trades are refused (invalid), never stored in the wrong
unit. Quote sizes stay in contracts; `tickers` carry no update id.
"""

from __future__ import annotations

from typing import Literal

from dataflows.parse._fast_path import flatten
from dataflows.venues import checked, common, declare, typed
from dataflows.venues import instruments as ins
from dataflows.venues.common import check_quote, num, price_size, side_of
from dataflows.venues.declare import FrameError, check_ts, json_object
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult

NAME = "okx"
_CHANNEL = {"trades": "trades", "quotes": "tickers", "books": "books"}
_SIDES = {"buy": "buy", "sell": "sell"}
_PONG = ("pong", b"pong")
_INSTRUMENTS = "https://www.okx.com/api/v5/public/instruments?instType="


def normalize(inst: str) -> str:
    upper = inst.upper()
    symbol = f"{upper[:-5]}-PERP" if upper.endswith("-SWAP") else upper
    inverse = symbol.split("-")[1:2] == ["USD"] and ins.kind_of(symbol) in (ins.PERPETUAL, ins.FUTURE)
    return ins.inverse_symbol(symbol) if inverse else symbol


def native(symbol: str) -> str:
    upper = ins.plain_symbol(symbol.upper())
    return f"{upper[:-5]}-SWAP" if upper.endswith("-PERP") else upper


def _spec(inst: str) -> ins.Spec:
    """Without the instrument list: spot, and inverse contracts (100 USD BTC, 10 USD others)."""
    symbol = normalize(inst)
    if ins.kind_of(symbol) == ins.SPOT:
        return ins.spec_of(symbol)
    if ins.is_inverse(symbol):
        return ins.spec_of(symbol, 100.0 if symbol.startswith("BTC-") else 10.0, True)
    raise FrameError(f"contract size of {inst[:40]!r} unknown (instrument list not loaded)")


def _listed(reply) -> list[tuple[str, ins.Spec]]:
    """public/instruments: ctVal x ctMult per contract, inverse when ctType says so."""
    out = []
    for item in reply["data"]:
        if item["instType"] != "SPOT":
            size = float(item["ctVal"]) * float(item["ctMult"] or 1)
            out.append((item["instId"], ins.spec_of(normalize(item["instId"]), size,
                                                    item["ctType"] == "inverse")))
    return out


_catalog = ins.Catalog(NAME, _spec, _listed, tuple(
    _INSTRUMENTS + kind for kind in ("SWAP", "FUTURES", "OPTION&uly=BTC-USD", "OPTION&uly=ETH-USD")))
_EPOCH_MS, _MAX_MS = -(-MARKET_EPOCH_US // 1000), common.MAX_TS_US // 1000


def _ms(value: object) -> int:
    if value.__class__ is not str or not value.isdigit() or value == "0":  # type: ignore
        raise FrameError(f"bad ms timestamp {value!r}")
    return check_ts(int(value) * 1000)  # type: ignore[arg-type]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    if frame in _PONG:
        return ParseResult(ignored=1)
    msg = json_object(frame)
    arg, data = msg.get("arg"), msg.get("data")
    if data is not None and arg is not None:
        channel = arg["channel"]
        if channel == "trades":
            trades = []
            for item in data:
                price, amount = price_size(item, "px", "sz")
                side = side_of(_SIDES, item["side"])
                ident = item["tradeId"]
                if ident.__class__ is not str or not 0 < len(ident) <= 128:
                    raise FrameError(f"bad tradeId {ident!r}")
                inst = item["instId"]
                trades.append(ins.trade(NAME, _catalog(inst), inst, ident, price, amount, side,
                                        _ms(item["ts"]), received_ts))
            return ParseResult(trades=trades, ignored=0 if trades else 1)
        if channel == "tickers":
            quotes = []
            for item in data:
                bid, bid_size = num(item["bidPx"] or 0), num(item["bidSz"] or 0)
                ask, ask_size = num(item["askPx"] or 0), num(item["askSz"] or 0)
                check_quote(bid, bid_size, ask, ask_size)
                inst = item["instId"]
                quotes.append(ins.quote(NAME, _catalog(inst), inst, bid, bid_size, ask, ask_size,
                                        _ms(item["ts"]), received_ts))
            return ParseResult(quotes=quotes, ignored=0 if quotes else 1)
        return ParseResult(ignored=1)  # books, candles, ...
    event = msg.get("event")
    if event == "error":
        raise FrameError(f"venue error {msg.get('code')}: {str(msg.get('msg'))[:200]}")
    if event is not None:
        return ParseResult(ignored=1)  # subscribe/unsubscribe acks, notices
    raise FrameError("unknown message (no arg/data, no event)")


# Fast path (parse_many): `trades` pushes, typed (dataflows/venues/typed.py), only the fields
# `_parse` reads; `ts` stays text (`_parse` refuses a JSON number there); `side` one of
# _SIDES (decoded as the Literal's own str: its lookups compare by identity). Frames it
# refuses go through `_parse`.
_Item = typed.struct("_Item", [("instId", str), ("tradeId", str), ("px", float), ("sz", float),
                               ("side", Literal["buy", "sell"]), ("ts", str)])
_decode = typed.decoder(typed.struct("_Push", [
    ("arg", typed.struct("_Arg", [("channel", Literal["trades"])])), ("data", list[_Item])]))


_read = checked.Reader(("instId", "o"), ("tradeId", "s"), ("px", "f"), ("sz", "f"),
                       ("side", "m", _SIDES, str), ("ts", "d"))


def _build(decoded: list, received: list[int]):
    items, per_frame = flatten(decoded, "data")
    ok, (natives, ids, price, size, sides, ts) = _read(items)
    checked.within(ts, ok, _EPOCH_MS, _MAX_MS)  # as _ms checks
    return checked.trades(NAME, ok, _catalog, natives, ids, price, size, sides, ts * 1000,
                          received, per_frame)


VENUES = [
    declare.venue(
        NAME, "wss://ws.okx.com:8443/ws/v5/public",
        ("ws.okx.com", "wsaws.okx.com", "ws.okex.com", "wspap.okx.com"), _parse,
        channels=_CHANNEL, native=native, normalize=normalize, catalog=_catalog,
        frames=declare.op_args(lambda c, s: {"channel": c, "instId": native(s)}, True),
        fast=('"channel":"trades"', _decode, _build), ping_interval_s=25.0, ping_frame="ping")
]

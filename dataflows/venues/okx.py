"""OKX v5 public WebSocket: `trades` channel (taker side given), `tickers` for best bid/ask.

The client sends the text `ping` every <30 s and gets the text `pong` (not JSON).
Instrument ids are BASE-QUOTE(-YYMMDD(-STRIKE-C|P)), our form, except perpetual swaps:
`BTC-USDT-SWAP` -> `BTC-USDT-PERP`; inverse (coin-margined, USD) swaps and futures are marked:
`BTC-USD-SWAP` -> `BTC-USD-INV-PERP`, `BTC-USD-220527` -> `BTC-USD-INV-220527`.
Swap, futures and option sizes are contracts of
ctVal x ctMult (public/instruments): inverse ones in USD (BTC 100, others 10), linear
and options in BASE; without the instrument list a linear contract's size is unknown and
its trades are refused (invalid), never stored in the wrong unit. Quote sizes stay in
contracts; `tickers` carry no update id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec
import orjson

from dataflows.venues import instruments as ins
from dataflows.venues.base import Venue
from dataflows.venues.common import (
    INF,
    FrameError,
    check_quote,
    check_trade,
    check_ts,
    fast_many,
    loads,
    num,
    safe_parse,
)
from feedhouse.core.records import ParseResult, Trade

NAME = "okx"
_CHANNEL = {"trades": "trades", "quotes": "tickers"}
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
    kind = ins.kind_of(symbol)
    if kind == ins.SPOT:
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
_cached = _catalog.cached


def _frames(op: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    args = [{"channel": _CHANNEL[c], "instId": native(s)} for c in channels for s in symbols]
    return [orjson.dumps({"op": op, "args": args}).decode()]


def _ms(value: object) -> int:
    if value.__class__ is not str or not value.isdigit() or value == "0":  # type: ignore
        raise FrameError(f"bad ms timestamp {value!r}")
    return check_ts(int(value) * 1000)  # type: ignore[arg-type]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    if frame in _PONG:
        return ParseResult(ignored=1)
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    arg = msg.get("arg")
    data = msg.get("data")
    if data is not None and arg is not None:
        channel = arg["channel"]
        if channel == "trades":
            trades = []
            for item in data:
                price, amount = num(item["px"]), num(item["sz"])
                check_trade(price, amount)
                side = _SIDES.get(item["side"])
                if side is None:
                    raise FrameError(f"bad side {item['side']!r}")
                ident = item["tradeId"]
                if ident.__class__ is not str or not 0 < len(ident) <= 128:
                    raise FrameError(f"bad tradeId {ident!r}")
                inst = item["instId"]
                trades.append(ins.trade(
                    NAME, _catalog(inst), inst, ident, price, amount, side, _ms(item["ts"]),
                    received_ts,
                ))
            return ParseResult(trades=trades, ignored=0 if trades else 1)
        if channel == "tickers":
            quotes = []
            for item in data:
                bid, bid_size = num(item["bidPx"] or 0), num(item["bidSz"] or 0)
                ask, ask_size = num(item["askPx"] or 0), num(item["askSz"] or 0)
                check_quote(bid, bid_size, ask, ask_size)
                inst = item["instId"]
                quotes.append(ins.quote(
                    NAME, _catalog(inst), inst, bid, bid_size, ask, ask_size, _ms(item["ts"]),
                    received_ts,
                ))
            return ParseResult(quotes=quotes, ignored=0 if quotes else 1)
        return ParseResult(ignored=1)  # books, candles, ...
    event = msg.get("event")
    if event == "error":
        raise FrameError(f"venue error {msg.get('code')}: {str(msg.get('msg'))[:200]}")
    if event is not None:
        return ParseResult(ignored=1)  # subscribe/unsubscribe acks, notices
    raise FrameError("unknown message (no arg/data, no event)")


# Fast path (parse_many): `trades` pushes through a typed msgspec decoder. Every field is
# declared and typed (unknown fields refused), so it validates the whole frame as strictly
# as orjson + `_parse` do; frames it refuses go through `_parse`.
class _Arg(msgspec.Struct, forbid_unknown_fields=True):
    channel: Literal["trades"]
    instId: str = ""


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    instId: str
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str
    count: str = ""  # newer pushes: trades aggregated


class _Push(msgspec.Struct, forbid_unknown_fields=True):
    arg: _Arg
    data: list[_Item]


_decode_push = msgspec.json.Decoder(_Push).decode


_new = tuple.__new__  # Trade(...) without the NamedTuple's Python-level __new__


def _fast(frame: str | bytes, received_ts: int, trades: list) -> int:
    items = _decode_push(frame).data
    for item in items:
        price, amount = float(item.px), float(item.sz)
        if not (0.0 < price < INF and 0.0 < amount < INF):  # check_trade, inline
            return 0
        ident = item.tradeId
        if not 0 < len(ident) <= 128:
            return 0
        ts = _ms(item.ts)
        if ts <= 0:  # "00": safe_parse's check
            return 0
        inst = item.instId
        spec = _cached(inst) or _catalog(inst)
        trades.append(_new(Trade, (
            NAME, spec.symbol, inst, ident, price,
            amount if spec.contract_size == 1.0 and not spec.inverse else spec.base(amount, price),
            _SIDES[item.side],
            ts, received_ts, spec.kind, amount, spec.contract_size,
        )))
    return len(items)


_safe_parse = safe_parse(NAME, _parse)

VENUES = [
    Venue(
        name=NAME,
        url="wss://ws.okx.com:8443/ws/v5/public",
        hosts=("ws.okx.com", "wsaws.okx.com", "ws.okex.com", "wspap.okx.com"),
        parse=_safe_parse,
        parse_many=fast_many(_safe_parse, '"channel":"trades"', _fast),
        subscribe=lambda symbols, channels: _frames("subscribe", symbols, channels),
        unsubscribe=lambda symbols, channels: _frames("unsubscribe", symbols, channels),
        ping_interval_s=25.0,
        ping_frame="ping",
        native_symbol=native,
        normalize_symbol=normalize,
        channels=("trades", "quotes"),
        catalog=_catalog,
    )
]

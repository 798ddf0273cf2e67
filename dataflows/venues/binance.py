"""Binance's stream format and its spot venues, binance and binance_us (`BTCUSDT` ->
`BTC-USDT`); binance_futures.py declares the USD-M and COIN-M venues with this format.
Subscriptions live in the URL (combined streams `/stream?streams=a@aggTrade/b@bookTicker`);
frames arrive wrapped as {"stream", "data"} (or bare on raw `/ws/` streams). Trades: `aggTrade`
(the id `a` is gap-checkable), also raw `trade`; quotes: `bookTicker` (update id `u`).
The server pings at the WebSocket protocol level; the client library answers.
"""

from __future__ import annotations

from dataflows.venues import checked, declare, typed
from dataflows.venues import instruments as ins
from dataflows.venues.common import MAX_TS_US, book_top, int_id, price_size
from dataflows.venues.declare import FrameError, json_object, split_concatenated
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult

_STREAM = {"trades": "aggTrade", "quotes": "bookTicker", "books": "depth@100ms"}
_MARKET_EPOCH_MS, _MAX_MS = MARKET_EPOCH_US // 1000, MAX_TS_US // 1000  # Binance times are ms
# Non-market frames: depth and kline streams, SUBSCRIBE acks ({"result":null,"id":1}).
_IGNORED_EVENTS = frozenset({
    "depthUpdate", "kline", "24hrTicker", "24hrMiniTicker", "markPriceUpdate", "forceOrder",
    "continuous_kline", "indexPriceUpdate", "contractInfo"})
# Binance quote assets beyond common.QUOTE_ASSETS, tried first ("XRPBKRW" is not XRPB-KRW).
_EXTRA_QUOTES = ("BKRW", "EURI", "USDS", "GYEN", "AEUR", "VAI", "COP", "CZK")


def normalize(native: str) -> str:
    """'BTCUSDT' -> 'BTC-USDT'; COIN-M 'BTCUSD_PERP' -> 'BTC-USD-PERP' (delivery date kept)."""
    pair, sep, suffix = native.upper().partition("_")
    quote = next((q for q in _EXTRA_QUOTES if pair.endswith(q) and len(pair) > len(q)), "")
    base = f"{pair[: -len(quote)]}-{quote}" if quote else split_concatenated(pair)
    return f"{base}-{suffix}" if sep else base


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'BTCUSDT'; 'BTC-USD-PERP' -> 'BTCUSD_PERP'."""
    parts = symbol.upper().split("-")
    return "".join(parts[:2]) + "".join("_" + p for p in parts[2:])


def _streams(to_native):  # (url_for, frames): subscribing is the URL; unsubscribing a frame

    def url_for(base: str, symbols, channels) -> str:
        root = base.split("?", 1)[0].rstrip("/").removesuffix("/stream").removesuffix("/ws")
        streams = (f"{to_native(s).lower()}@{_STREAM[c]}" for c in channels for s in symbols)
        return f"{root}/stream?streams={'/'.join(streams)}"

    def frames(op: str, symbols, channels) -> list[str]:
        params = [f"{to_native(s).lower()}@{c}" for c in channels for s in symbols]
        return [declare.dumps({"method": op, "params": params, "id": 1})] if op else []

    return url_for, frames


def _parse(venue: str, spec_of: ins.Catalog):
    def parse(frame: str | bytes, received_ts: int) -> ParseResult:
        msg = json_object(frame)
        data = msg.get("data", msg) if "stream" in msg else msg
        if data.__class__ is not dict:
            raise FrameError("'data' is not an object")
        event = data.get("e")
        if event == "aggTrade" or event == "trade":
            price, amount = price_size(data, "p", "q")
            ident = int_id(data["a"] if event == "aggTrade" else data["t"])
            if (maker := data["m"]).__class__ is not bool:
                raise FrameError(f"'m' is not a boolean: {maker!r}")
            if (ts := data["T"]).__class__ is not int or ts <= 0:
                raise FrameError(f"bad trade time: {ts!r}")
            sym, side = data["s"], "sell" if maker else "buy"  # m: the buyer made; the taker sold
            return ParseResult(trades=[ins.trade(venue, spec_of(sym), sym, ident, price, amount,
                                                 side, ts * 1000, received_ts)])
        if event == "bookTicker" or (event is None and "u" in data and "A" in data):
            bid, bid_size, ask, ask_size = book_top(data, "b", "B", "a", "A")
            ts = data.get("T") or data.get("E")  # futures stamp bookTicker; spot does not
            if ts is not None and (ts.__class__ is not int or ts <= 0):
                raise FrameError(f"bad quote time: {ts!r}")
            spec = spec_of(sym := data["s"])
            if (ident := data.get("u", 0)).__class__ is not int or not 0 <= ident < 2**63:
                raise FrameError(f"bad update id: {ident!r}")
            return ParseResult(quotes=[ins.quote(venue, spec, sym, bid, bid_size, ask, ask_size,
                                                 ts * 1000 if ts else received_ts, received_ts,
                                                 ident)])
        if event in _IGNORED_EVENTS or ("result" in msg and "id" in msg) or (
                event is None and "lastUpdateId" in data):  # partial depth (depth5/10/20)
            return ParseResult(ignored=1)
        if "code" in msg:
            raise FrameError(f"venue error {msg['code']!r}: {str(msg.get('msg'))[:200]}")
        raise FrameError(f"unknown message (e={event!r})")

    return parse


# Fast path (parse_many): combined-stream trades, typed (dataflows/venues/typed.py), only
# the fields `parse` reads, the trade id `a` (aggTrade) or `t` (trade) read as `ident`; a
# frame it refuses goes through `parse`.
_FIELDS = [("s", str), ("ident", typed.Int), ("p", float), ("q", float), ("T", typed.Int),
           ("m", typed.Flag)]
_AggTrade = typed.struct("_AggTrade", _FIELDS, tag_field="e", tag="aggTrade", rename={"ident": "a"})
_RawTrade = typed.struct("_RawTrade", _FIELDS, tag_field="e", tag="trade", rename={"ident": "t"})
# `stream` must be present (else `parse` reads the frame as unwrapped)
_decode = typed.decoder(typed.struct("_Combined", [("stream", str),
                                                   ("data", _AggTrade | _RawTrade)]))
_TAKER = {True: "sell", False: "buy"}  # m: the buyer made; the taker sold
_read = checked.Reader(("s", "o"), ("ident", "t"), ("p", "f"), ("q", "f"), ("T", "i"),
                       ("m", "m", _TAKER, bool))


def _build(venue: str, spec_of: ins.Catalog) -> typed.Build:
    def build(decoded: list, received: list[int]):
        ok, (natives, ids, price, size, ts, sides) = _read(checked.attribute(decoded, "data"))
        checked.within(ts, ok, _MARKET_EPOCH_MS, _MAX_MS)  # safe_parse's range (no overflow)
        return checked.trades(venue, ok, spec_of, natives, ids, price, size, sides, ts * 1000,
                              received)

    return build


def _agg(msg) -> list[tuple[str, int]]:
    data = msg.get("data", msg)  # aggTrade ids `a` are consecutive per symbol
    return [(data["s"], int(data["a"]))] if data.get("e") == "aggTrade" else []


def venue(name: str, url: str, hosts: tuple[str, ...], to_native=native, to_symbol=normalize,
          catalog: ins.Catalog | None = None):
    """A venue of this stream format (its symbol rules and contract sizes as given)."""
    spec_of = catalog or ins.simple(name, to_symbol)
    url_for, frames = _streams(to_native)
    return declare.venue(
        name, url, hosts, _parse(name, spec_of), channels=_STREAM, frames=frames,
        ops=("", "UNSUBSCRIBE"), native=to_native, normalize=to_symbol, url_for=url_for,
        fast=('rade"', _decode, _build(name, spec_of)), catalog=spec_of,  # "aggTrade" / "trade"
        sequence_of=declare.sequence_check("aggTrade", _agg))


VENUES = [
    venue("binance", "wss://stream.binance.com:9443/stream",
          ("stream.binance.com", "data-stream.binance.vision")),
    venue("binance_us", "wss://stream.binance.us:9443/stream", ("stream.binance.us",)),
]

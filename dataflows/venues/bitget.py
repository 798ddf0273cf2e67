"""Bitget public WebSocket: v2 (`wss://ws.bitget.com/v2/ws/public`) and the v1 format.

Pushes are {"action": "snapshot"|"update", "arg": {"instType", "channel", "instId"}, "data"}:
- channel `trade`: a `snapshot` of recent trades on subscribe, then `update`s, all trades
  (dedup collapses repeats). v2 entries are objects with a `tradeId`; v1 entries (instType
  `sp`) are arrays `[ts, price, size, side]`: the id is a stable hash of those fields;
- channel `books1` (v2 top of book) -> quotes; books, tickers, candles, acks, `pong` -> ignored.
Heartbeat: the client sends the text `ping` every 30 s.
Symbols: spot `BTCUSDT` -> `BTC-USDT`; futures (v2 instType `*-FUTURES`, v1 `mc`, v1 ids
`BTCUSDT_UMCBL`) -> `BTC-USDT-PERP`; coin-margined (inverse, USD-quoted: `COIN-FUTURES`,
`BTCUSD_DMCBL`) are marked: `BTC-USD-INV-PERP`, delivery `BTCUSD_231229` -> `BTC-USD-INV-231229`;
v1 spot ids like `BTCUSDT_SPBL` -> `BTC-USDT`. Sizes are in BASE (coin-margined ones too).
"""

from __future__ import annotations

from dataflows.venues import declare
from dataflows.venues.common import check_quote, name_field, num, price_size, side_of
from dataflows.venues.declare import FrameError, ms_us, stable_trade_id, text_id
from dataflows.venues.instruments import inverse_symbol, kind_of, plain_symbol
from feedhouse.core.records import ParseResult, Quote, Trade

VENUE = "bitget"
_SIDES = {"buy": "buy", "sell": "sell"}
_FUTURES_TYPES = frozenset({"mc", "MC", "USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES",
                            "umcbl", "dmcbl", "cmcbl"})
_FUTURES_BY_QUOTE = {"USDT": "USDT-FUTURES", "USDC": "USDC-FUTURES", "USD": "COIN-FUTURES"}
_CHANNEL = {"trades": "trade", "quotes": "books1", "books": "books"}
# spot quotes plus USD for coin-margined futures (BTCUSD)
_QUOTES = declare.quote_table("USDT", "USDC", "USDE", "BTC", "ETH", "EUR", "BRL", "USD")
_IGNORED_EVENTS = frozenset({"subscribe", "unsubscribe", "error", "login"})


def normalize(native: str) -> str:
    """'BTCUSDT' / 'BTCUSDT_SPBL' -> 'BTC-USDT'; 'BTCUSDT_UMCBL' -> 'BTC-USDT-PERP';
    delivery 'BTCUSD_231229' -> 'BTC-USD-INV-231229' (coin-margined: marked inverse)."""
    pair, sep, suffix = native.upper().partition("_")
    base = declare.split_with(pair, _QUOTES)
    if sep and len(suffix) == 6 and suffix.isdigit():
        return _coin_margined(f"{base}-{suffix}")
    return _coin_margined(f"{base}-PERP") if sep and suffix != "SPBL" else base


def _coin_margined(symbol: str) -> str:  # Bitget's USD-quoted contracts are inverse
    return inverse_symbol(symbol) if symbol.split("-")[1:2] == ["USD"] else symbol


def native(symbol: str) -> str:
    """'BTC-USDT' and 'BTC-USDT-PERP' -> 'BTCUSDT' (the instType tells them apart)."""
    parts = plain_symbol(symbol.upper()).split("-")
    return "".join(parts[:2]) + (f"_{parts[2]}" if parts[2:3] != ["PERP"] and len(parts) > 2 else "")


_normalize = declare.normalizer(normalize)


def _symbol(arg: dict) -> tuple[str, str]:
    symbol = _normalize(inst := name_field(arg, "instId", "instId"))
    if arg.get("instType") in _FUTURES_TYPES and kind_of(symbol) == "spot":
        symbol = _coin_margined(symbol + "-PERP")
    return symbol, inst


def _trade_v2(entry: dict, symbol: str, inst: str, received_ts: int) -> Trade:
    price, amount = price_size(entry, "price", "size")
    side = side_of(_SIDES, entry["side"])
    return Trade(VENUE, symbol, inst, text_id(entry["tradeId"]), price, amount, side,
                 ms_us(entry["ts"]), received_ts, kind_of(symbol), amount, 1.0)


def _trade_v1(entry: list, symbol: str, inst: str, received_ts: int) -> Trade:
    ts, price_text, size_text, side_text = entry[0], entry[1], entry[2], entry[3]
    price, amount = price_size(entry, 1, 2)
    side = side_of(_SIDES, side_text)
    exchange_ts = ms_us(ts)
    # no exchange id in v1: hash the trade's own fields, as sent (strings, not floats)
    ident = stable_trade_id(inst, ts, price_text, size_text, side_text)
    return Trade(VENUE, symbol, inst, ident, price, amount, side, exchange_ts, received_ts,
                 kind_of(symbol), amount, 1.0)


def _trades(data: list, arg: dict, received_ts: int) -> list[Trade]:
    symbol, inst = _symbol(arg)
    out = []
    for entry in data:
        if entry.__class__ is dict:
            out.append(_trade_v2(entry, symbol, inst, received_ts))
        elif entry.__class__ is list:
            out.append(_trade_v1(entry, symbol, inst, received_ts))
        else:
            raise FrameError(f"bad trade entry {entry!r}"[:120])
    return out


def _level(levels: object) -> tuple[float, float]:
    if levels.__class__ is not list:
        raise FrameError("book side is not a list")
    if not levels:
        return 0.0, 0.0  # empty side
    return num(levels[0][0]), num(levels[0][1])  # type: ignore[index]


def _quotes(data: list, arg: dict, received_ts: int) -> list[Quote]:
    symbol, inst = _symbol(arg)
    out = []
    for entry in data:
        bid, bid_size = _level(entry["bids"])
        ask, ask_size = _level(entry["asks"])
        check_quote(bid, bid_size, ask, ask_size)
        out.append(Quote(VENUE, symbol, inst, bid, bid_size, ask, ask_size,
                         ms_us(entry["ts"]), received_ts, kind_of(symbol)))
    return out


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    if frame == "pong" or frame == b"pong":
        return ParseResult(ignored=1)
    msg = declare.json_object(frame)
    if "data" in msg:
        arg = msg["arg"]
        if arg.__class__ is not dict:
            raise FrameError("'arg' is not an object")
        data = msg["data"]
        if data.__class__ is not list:
            raise FrameError("'data' is not a list")
        channel = arg["channel"]
        if channel == "trade":
            return declare.trades_or_ignored(_trades(data, arg, received_ts))
        if channel == "books1":
            return declare.quotes_or_ignored(_quotes(data, arg, received_ts))
        if channel.__class__ is str:
            return ParseResult(ignored=1)  # books, ticker, candles
        raise FrameError(f"bad channel {channel!r}")
    if msg.get("event") in _IGNORED_EVENTS:
        return ParseResult(ignored=1)  # acks and error replies
    raise FrameError("unknown message")


def _inst_type(symbol: str) -> str:
    parts = plain_symbol(symbol.upper()).split("-")
    return _FUTURES_BY_QUOTE.get(parts[1], "USDT-FUTURES") if parts[2:3] == ["PERP"] else "SPOT"


VENUES = [
    declare.venue(
        VENUE, "wss://ws.bitget.com/v2/ws/public", ("ws.bitget.com", "ws.bitgetapi.com"), _parse,
        channels=_CHANNEL, native=native, normalize=normalize, frames=declare.op_args(
            lambda c, s: {"instType": _inst_type(s), "channel": c, "instId": native(s)}),
        ping_interval_s=30.0, ping_frame="ping")
]

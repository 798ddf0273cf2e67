"""Deribit API v2, JSON-RPC over WebSocket (`wss://www.deribit.com/ws/api/v2`).

Data arrives as notifications {"method": "subscription", "params": {"channel", "data"}}:
- `trades.<instrument>.100ms`: a list of trades (`trade_id`, taker `direction`, `amount` in
  the instrument's unit: USD for inverse futures/perpetuals, converted to BASE at the trade's
  price (10 USD at 8,950 = 0.00111732 BTC; native_amount 10, contract_size 1 USD), coins
  for options and linear ones);
  `.raw` channels need an authorized connection, so the public feed asks for `100ms`
  (every trade is still delivered, batched);
- `quote.<instrument>`: best bid/ask -> quotes;
- tickers, books and other channels -> ignored, as are RPC replies (subscribe acks).
Gaps: `trade_seq` is consecutive per instrument (sequence_of).
Heartbeat: the subscribe frames first call `public/set_heartbeat`; the server then sends
`heartbeat` notifications and a `test_request` must be answered with `public/test`.

Symbols: inverse instruments are USD-quoted and marked (`BTC-PERPETUAL` -> `BTC-USD-INV-PERP`,
`BTC-25SEP20` -> `BTC-USD-INV-200925`; options `BTC-24SEP21-8000-P` -> `BTC-USD-210924-8000-P`); linear
ones name their quote (`ETH_USDC-PERPETUAL` -> `ETH-USDC-PERP`); spot `BTC_USDC` -> `BTC-USDC`.
Quote sizes stay as Deribit gives them (USD for inverse instruments).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from dataflows.venues import instruments as ins
from dataflows.venues.base import Venue
from dataflows.venues.common import (
    FrameError,
    check_quote,
    check_trade,
    loads,
    ms_us,
    num,
    safe_parse,
    text_id,
    trades_or_ignored,
)
from feedhouse.core.records import ParseResult

VENUE = "deribit"
HEARTBEAT_S = 30
_SIDES = {"buy": "buy", "sell": "sell"}
_STRIKE_WITH_DECIMAL = re.compile(r"^\d+D\d+$")  # linear option strikes: '0d625'


def normalize(native: str) -> str:
    head, *rest = native.upper().split("-")
    base, sep, quote = head.partition("_")
    if not sep:
        quote = "USD"
    tail = ["PERP" if part == "PERPETUAL" else part.replace("_", ".") for part in rest]
    if tail and tail[0] != "PERP":
        tail[0] = ins.from_ddmmmyy(tail[0])  # expiry
    symbol = "-".join([base, quote, *tail])
    # coin-margined futures and perpetuals (no '_QUOTE' in the name) are inverse
    inverse = not sep and ins.kind_of(symbol) in (ins.PERPETUAL, ins.FUTURE)
    return ins.inverse_symbol(symbol) if inverse else symbol


def native(symbol: str) -> str:
    parts = ins.plain_symbol(symbol.upper()).split("-")
    if len(parts) < 2:
        return symbol  # already native
    base, quote, *rest = parts
    if not rest:
        return f"{base}_{quote}"  # spot
    head = base if quote == "USD" else f"{base}_{quote}"
    tail = []
    if rest[0].isdigit() and len(rest[0]) == 6:  # YYMMDD -> Deribit's DMMMYY
        day = int(rest[0][4:])
        rest = [f"{day}{_MONTHS[int(rest[0][2:4]) - 1]}{rest[0][:2]}", *rest[1:]]
    for part in rest:
        if part == "PERP":
            part = "PERPETUAL"
        elif _STRIKE_WITH_DECIMAL.match(part):
            part = part.lower()
        tail.append(part.replace(".", "_"))
    return "-".join([head, *tail])


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _spec(native: str) -> ins.Spec:
    """Inverse futures and perpetuals (no '_QUOTE' in the name) trade in USD amounts."""
    symbol = normalize(native)
    return ins.spec_of(symbol, 1.0, ins.is_inverse(symbol))


_catalog = ins.Catalog(VENUE, _spec)


def _instrument(entry: dict) -> str:
    name = entry["instrument_name"]
    if name.__class__ is not str or not name:
        raise FrameError(f"bad instrument {name!r}")
    return name


def _trades(data: list, received_ts: int) -> list:
    if data.__class__ is not list:
        raise FrameError("trades 'data' is not a list")
    out = []
    for entry in data:
        price = num(entry["price"])
        amount = num(entry["amount"])
        check_trade(price, amount)
        side = _SIDES.get(entry["direction"])
        if side is None:
            raise FrameError(f"bad direction {entry['direction']!r}")
        name = _instrument(entry)
        out.append(ins.trade(
            VENUE, _catalog(name), name, text_id(entry["trade_id"]), price, amount, side,
            ms_us(entry["timestamp"]), received_ts,
        ))
    return out


def _side(value: object) -> float:
    return 0.0 if value is None else num(value)  # null: no order on that side


def _quote(data: dict, received_ts: int):
    bid, bid_size = _side(data["best_bid_price"]), _side(data["best_bid_amount"])
    ask, ask_size = _side(data["best_ask_price"]), _side(data["best_ask_amount"])
    check_quote(bid, bid_size, ask, ask_size)
    name = _instrument(data)
    return ins.quote(
        VENUE, _catalog(name), name, bid, bid_size, ask, ask_size,
        ms_us(data["timestamp"]), received_ts,
    )


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    method = msg.get("method")
    if method == "subscription":
        params = msg["params"]
        channel = params["channel"]
        if channel.__class__ is not str:
            raise FrameError(f"bad channel {channel!r}")
        if channel.startswith("trades."):
            return trades_or_ignored(_trades(params["data"], received_ts))
        if channel.startswith("quote."):
            return ParseResult(quotes=[_quote(params["data"], received_ts)])
        return ParseResult(ignored=1)  # ticker, book, index, ... channels
    if method == "heartbeat":
        return ParseResult(ignored=1)
    if method is None and "id" in msg and ("result" in msg or "error" in msg):
        return ParseResult(ignored=1)  # RPC replies: subscribe acks, test, errors
    raise FrameError(f"unknown message (method={method!r})")


def _rpc(ident: int, method: str, params: dict) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": ident, "method": method,
                         "params": params}).decode()


def _channels(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    names = []
    for channel in channels:
        for symbol in symbols:
            if channel == "trades":
                names.append(f"trades.{native(symbol)}.100ms")
            elif channel == "quotes":
                names.append(f"quote.{native(symbol)}")
    return names


def _subscribe(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    names = _channels(symbols, channels)
    if not names:
        return []
    return [
        _rpc(1, "public/set_heartbeat", {"interval": HEARTBEAT_S}),
        _rpc(2, "public/subscribe", {"channels": names}),
    ]


def _unsubscribe(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    names = _channels(symbols, channels)
    return [_rpc(3, "public/unsubscribe", {"channels": names})] if names else []


def answer_ping(frame: str | bytes) -> str | None:
    """A heartbeat `test_request` must be answered with `public/test`, or Deribit hangs up."""
    if len(frame) > 512 or b"test_request" not in (
        frame if isinstance(frame, bytes) else frame.encode()
    ):
        return None
    try:
        msg = loads(frame)
        if msg.get("method") == "heartbeat" and msg["params"].get("type") == "test_request":
            return _rpc(4, "public/test", {})
    except (ValueError, KeyError, AttributeError, TypeError):
        pass
    return None


def sequence_of(frame: str | bytes) -> list[tuple[str, int]]:
    """`trade_seq` rises by one per instrument (all trades arrive, even batched at 100ms),
    so a jump is a gap in what the feed saw."""
    if b"trade_seq" not in (frame if isinstance(frame, bytes) else frame.encode()):
        return []
    try:
        data = loads(frame)["params"]["data"]
        return [(t["instrument_name"], int(t["trade_seq"])) for t in data]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # the parser reports the frame as invalid


VENUES = [
    Venue(
        name=VENUE,
        url="wss://www.deribit.com/ws/api/v2",
        hosts=("www.deribit.com", "deribit.com", "streams.deribit.com", "test.deribit.com"),
        parse=safe_parse(VENUE, _parse),
        subscribe=_subscribe,
        unsubscribe=_unsubscribe,
        answer_ping=answer_ping,
        sequence_of=sequence_of,
        native_symbol=native,
        normalize_symbol=normalize,
        channels=("trades", "quotes"),
        catalog=_catalog,
    )
]

"""Deribit API v2, JSON-RPC over WebSocket. Notifications {"method": "subscription",
"params": {"channel", "data"}}: `trades.<instrument>.100ms` (`.raw` needs an authorized
connection; 100ms still delivers every trade, batched) lists trades (`trade_id`, taker
`direction`, `amount` in the instrument's unit: USD for inverse futures/perpetuals, converted
to BASE at the trade's price (10 USD at 8,950 = 0.00111732 BTC; native_amount 10,
contract_size 1 USD), coins for options and linear ones); `quote.<instrument>`: best bid/ask;
other channels and RPC replies -> ignored. Gaps: `trade_seq` is consecutive per instrument.
Heartbeat: subscribing first calls `public/set_heartbeat`; the server then sends `heartbeat`
notifications, and a `test_request` must be answered with `public/test`.
Symbols: inverse instruments are USD-quoted and marked (`BTC-PERPETUAL` -> `BTC-USD-INV-PERP`,
`BTC-25SEP20` -> `BTC-USD-INV-200925`; options `BTC-24SEP21-8000-P` -> `BTC-USD-210924-8000-P`); linear
ones name their quote (`ETH_USDC-PERPETUAL` -> `ETH-USDC-PERP`); spot `BTC_USDC` -> `BTC-USDC`.
Quote sizes stay as Deribit gives them (USD for inverse instruments).
"""

from __future__ import annotations

import calendar
import re

from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import book_top, name_field, price_size, side_of
from dataflows.venues.declare import FrameError, json_object, ms_us, text_id, trades_or_ignored
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
    inverse = not sep and ins.kind_of(symbol) in (ins.PERPETUAL, ins.FUTURE)  # coin-margined
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
        rest = [f"{day}{calendar.month_abbr[int(rest[0][2:4])].upper()}{rest[0][:2]}", *rest[1:]]
    for part in rest:
        if part == "PERP":
            part = "PERPETUAL"
        elif _STRIKE_WITH_DECIMAL.match(part):
            part = part.lower()
        tail.append(part.replace(".", "_"))
    return "-".join([head, *tail])


def _spec(native: str) -> ins.Spec:
    """Inverse futures and perpetuals (no '_QUOTE' in the name) trade in USD amounts."""
    symbol = normalize(native)
    return ins.spec_of(symbol, 1.0, ins.is_inverse(symbol))


_catalog = ins.Catalog(VENUE, _spec)


def _trades(data: list, received_ts: int) -> list:
    if data.__class__ is not list:
        raise FrameError("trades 'data' is not a list")
    out = []
    for entry in data:
        price, amount = price_size(entry, "price", "amount")
        side = side_of(_SIDES, entry["direction"], "direction")
        name = name_field(entry, "instrument_name", "instrument")
        out.append(ins.trade(VENUE, _catalog(name), name, text_id(entry["trade_id"]), price,
                             amount, side, ms_us(entry["timestamp"]), received_ts))
    return out


def _quote(data: dict, received_ts: int):
    bid, bid_size, ask, ask_size = book_top(  # null: no order on that side
        data, "best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount", True)
    name = name_field(data, "instrument_name", "instrument")
    return ins.quote(VENUE, _catalog(name), name, bid, bid_size, ask, ask_size,
                     ms_us(data["timestamp"]), received_ts)


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
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
    if method == "heartbeat" or (method is None and "id" in msg
                                 and ("result" in msg or "error" in msg)):
        return ParseResult(ignored=1)  # heartbeats; RPC replies: subscribe acks, test, errors
    raise FrameError(f"unknown message (method={method!r})")


def _rpc(ident: int, method: str, params: dict) -> str:
    return declare.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})


def _frames(op: str, symbols, channels) -> list[str]:
    # trades and book need an interval (`.raw` wants an authorized connection)
    names = [f"{c}.{native(s)}{'.100ms' if c in ('trades', 'book') else ''}" for c in channels for s in symbols]
    if not names:
        return []
    if op == "public/unsubscribe":
        return [_rpc(3, op, {"channels": names})]
    return [_rpc(1, "public/set_heartbeat", {"interval": HEARTBEAT_S}),
            _rpc(2, op, {"channels": names})]


def _test(msg) -> str | None:
    """A heartbeat `test_request` must be answered with `public/test`, or Deribit hangs up."""
    test = msg.get("method") == "heartbeat" and msg["params"].get("type") == "test_request"
    return _rpc(4, "public/test", {}) if test else None


def _seq(msg) -> list[tuple[str, int]]:
    """`trade_seq` rises by one per instrument (every trade arrives, batched at 100ms)."""
    return [(t["instrument_name"], int(t["trade_seq"])) for t in msg["params"]["data"]]


VENUES = [
    declare.venue(
        VENUE, "wss://www.deribit.com/ws/api/v2",
        ("www.deribit.com", "deribit.com", "streams.deribit.com", "test.deribit.com"), _parse,
        channels={"trades": "trades", "quotes": "quote", "books": "book"}, frames=_frames,
        ops=("public/subscribe", "public/unsubscribe"), native=native, normalize=normalize,
        answer_ping=declare.ping_answer("test_request", 512, _test),
        sequence_of=declare.sequence_check("trade_seq", _seq), catalog=_catalog)
]

"""Bybit v5 public WebSocket (`publicTrade.<symbol>`) and the legacy `realtime_public`
`trade.<symbol>` format of the fixture. The market comes from the endpoint's path
(/v5/public/spot, /linear, /inverse, /option; realtime_public was the USDT perpetuals):
one Venue per market (keys bybit, bybit@spot, bybit@inverse, bybit@option), all named
`bybit`, chosen by the feed's URL. Inverse sizes are USD contracts, converted to BASE. v5:
data items {T ms, s, S Buy/Sell (taker), v, p, i}; legacy: {symbol, price, size, side,
trade_time_ms | timestamp, trade_id}. The client sends {"op":"ping"} every 20 s.
"""

from __future__ import annotations

import calendar
from urllib.parse import urlsplit

from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import price_size, side_of
from dataflows.venues.declare import FrameError, json_object, split_concatenated, us_from_iso_z
from feedhouse.core.records import ParseResult, Trade

NAME = "bybit"
_SIDES = {"Buy": "buy", "Sell": "sell"}
# v5 public has one path per market: the same frame means another instrument on each
# (publicTrade.BTCUSDT is spot BTC-USDT on /spot, the perpetual BTC-USDT-PERP on /linear).
MARKETS = ("linear", "spot", "inverse", "option")


def _key(market: str) -> str:
    return NAME if market == "linear" else f"{NAME}@{market}"


def _select(url: str) -> str:
    market = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return _key(market if market in MARKETS else "linear")  # realtime_public: USDT perps


def normalize(native: str, market: str = "linear") -> str:
    """Spot 'BTCUSDT' -> 'BTC-USDT'. Linear: 'BTCUSDT' -> 'BTC-USDT-PERP', 'BTCPERP' ->
    'BTC-USDC-PERP', 'BTC-29DEC23' -> 'BTC-USDC-231229', 'BTCUSDT-27DEC24' -> 'BTC-USDT-241227'.
    Inverse (marked): 'BTCUSD' -> 'BTC-USD-INV-PERP', 'BTCUSDH23' -> 'BTC-USD-INV-230331'.
    Options: 'BTC-29DEC23-40000-C' -> 'BTC-USDC-231229-40000-C'."""
    upper = native.upper()
    if market == "spot":
        return split_concatenated(upper)
    if market == "inverse":
        return ins.inverse_symbol(normalize(native))
    if "-" in upper:
        head, expiry, *rest = upper.split("-")
        pair = split_concatenated(head) if len(head) > 5 else f"{head}-USDC"
        return "-".join([pair, ins.from_ddmmmyy(expiry), *rest])
    if upper.endswith("PERP") and len(upper) > 4:
        return f"{upper[:-4]}-USDC-PERP"
    if len(upper) > 6 and upper[-3] in ins.MONTH_CODES and upper[-2:].isdigit():
        return f"{split_concatenated(upper[:-3])}-{ins.from_month_code(upper[-3:])}"
    return f"{split_concatenated(upper)}-PERP"


def native(symbol: str) -> str:
    """The inverse of `normalize` for any market (the URL picks the market)."""
    parts = ins.plain_symbol(symbol.upper()).split("-")
    if len(parts) == 2:
        return "".join(parts)
    if parts[2] == "PERP":
        return f"{parts[0]}PERP" if parts[1] == "USDC" else parts[0] + parts[1]
    day, month, year = int(parts[2][4:]), int(parts[2][2:4]), parts[2][:2]
    if parts[1] == "USD" and len(parts) == 3:  # inverse futures: month code
        return f"{parts[0]}USD{ins.MONTH_CODES[month - 1]}{year}"
    expiry = f"{day}{calendar.month_abbr[month].upper()}{year}"
    head = parts[0] if parts[1] == "USDC" else parts[0] + parts[1]
    return "-".join([head, expiry, *parts[3:]])


def _catalog(market: str) -> ins.Catalog:
    def rule(native_symbol: str) -> ins.Spec:
        symbol = normalize(native_symbol, market)
        # inverse contracts are 1 USD each
        return ins.spec_of(symbol, 1.0, market == "inverse")

    return ins.Catalog(_key(market), rule)


def _id(value: object) -> str:
    if (value.__class__ is str and value) or value.__class__ is int:
        return str(value)
    raise FrameError(f"bad trade id {value!r}")


def _ms(value: object) -> int:
    if value.__class__ is int and value > 0:  # type: ignore[operator]
        return value * 1000  # type: ignore[operator]
    if value.__class__ is str and value.isdigit():  # type: ignore[union-attr]
        return int(value) * 1000  # type: ignore[arg-type]
    raise FrameError(f"bad ms timestamp {value!r}")


def _v5(spec_of: ins.Catalog, data: list, received_ts: int) -> list[Trade]:
    trades = []
    for item in data:
        price, amount = price_size(item, "p", "v")
        sym = item["s"]
        trades.append(ins.trade(NAME, spec_of(sym), sym, _id(item["i"]), price, amount,
                                side_of(_SIDES, item["S"]), _ms(item["T"]), received_ts))
    return trades


def _legacy(spec_of: ins.Catalog, data: list, received_ts: int) -> list[Trade]:
    trades = []
    for item in data:
        price, amount = price_size(item, "price", "size")
        sym, when = item["symbol"], item.get("trade_time_ms")
        ts = _ms(when) if when is not None else us_from_iso_z(item["timestamp"])
        trades.append(ins.trade(NAME, spec_of(sym), sym, _id(item["trade_id"]), price, amount,
                                side_of(_SIDES, item["side"]), ts, received_ts))
    return trades


def _parse(spec_of: ins.Catalog, frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    topic = msg.get("topic")
    if topic is not None:
        if topic.__class__ is not str:
            raise FrameError(f"bad topic {topic!r}")
        if topic.startswith("publicTrade."):
            trades = _v5(spec_of, msg["data"], received_ts)
        elif topic.startswith("trade."):
            trades = _legacy(spec_of, msg["data"], received_ts)
        else:
            return ParseResult(ignored=1)  # order books, tickers, klines
        return ParseResult(trades=trades, ignored=0 if trades else 1)
    if msg.get("success") is False:
        raise FrameError(f"venue error: {str(msg.get('ret_msg'))[:200]}")
    if "success" in msg or "op" in msg:
        return ParseResult(ignored=1)  # subscribe acks, pongs
    raise FrameError("unknown message (no topic)")


def _venue(market: str):
    spec_of = _catalog(market)
    return declare.venue(
        NAME, f"wss://stream.bybit.com/v5/public/{market}",
        ("stream.bybit.com", "stream.bytick.com"),
        lambda frame, received_ts: _parse(spec_of, frame, received_ts),
        channels={"trades": "publicTrade", "books": "orderbook.50"},
        frames=declare.op_args(lambda c, s: f"{c}.{native(s)}"),
        native=native, normalize=lambda symbol: normalize(symbol, market), key=_key(market),
        select=_select, catalog=spec_of, ping_interval_s=20.0, ping_frame='{"op":"ping"}',
    )


VENUES = [_venue(market) for market in MARKETS]

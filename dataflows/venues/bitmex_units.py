"""BitMEX quanto contracts in BASE units.

A quanto contract (BitMEX's `isQuanto`: ETHUSD, UNIUSDT, ...) is margined and settled in
XBT at a fixed Bitcoin multiplier per point of its USD (USDT) price. BitMEX's Quanto
Perpetuals Guide (bitmex.com/app/quantoPerpetualsGuide) values one contract as
    XBT value  = price x multiplier
    USD value  = XBT value x XBT price (.BXBT)
    BASE value = USD value / price       = multiplier x XBT price
so a contract's BASE size follows the XBT price; its own price cancels out. Worked example
(BitMEX's ETHUSD series guide): multiplier 0.000001 XBT per USD (100 satoshi), .BXBT
10,000 USD, ETHUSD 500: one contract is 500 x 0.000001 = 0.0005 XBT = 5 USD = 0.01 ETH
(= 0.000001 x 10,000); 1,000 contracts are 10 ETH. The recorded session agrees: UNIUSDT
(multiplier 1,000 satoshi) traded with homeNotional / size = 0.32175 UNI per contract
while XBTUSD traded at 32,175-32,187 (0.00001 x 32,175 = 0.32175; BitMEX rounds its XBT
rate to whole satoshi per USD, 1,000 / 3,108 = 0.3217503).

Trades carry BitMEX's own BASE figure (`homeNotional`): amount = homeNotional,
contract_size = homeNotional / size (bitmex.py). Quotes carry none, so each connection
keeps the latest XBT price it saw (`Rates`): the .BXBT index (a feed asking for quanto
quotes also subscribes to `instrument:.BXBT`, whose rows are read for its price and
stored nowhere), XBTUSD trades and quote mids, and the rate its quanto trades imply
(homeNotional / size / multiplier). A quanto quote then gets
contract_size = multiplier x that price, and sizes in BASE, when the price is at most
MAX_GAP_US away in exchange time; else contract_size 0 (sizes stay contracts) and the
post-migration step (stored.py, stored_quanto.py) converts the row later from the
store's prices, like rows stored before migration 010.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import FrameError, safe_parse
from feedhouse.core.records import ParseResult, Quote

MAX_GAP_US = 15 * 60 * 1_000_000  # the oldest XBT price a quote is converted with
XBT_USD = "XBTUSD"  # BitMEX's XBT/USD perpetual: its price is the XBT price
BXBT = ".BXBT"  # BitMEX's XBT/USD index: the formula's XBT price
_new = tuple.__new__  # Quote(...) without the NamedTuple's Python-level __new__


class Rates:
    """The latest XBT price (USD) one connection saw, and its exchange time (us)."""

    __slots__ = ("ts", "xbt")

    def __init__(self) -> None:
        self.ts, self.xbt = 0, 0.0

    def note(self, ts: int, xbt: float) -> None:
        """An XBT price at exchange time `ts`; an older one (a subscription's partial holds
        the last trade, maybe hours old) does not replace a newer one."""
        if ts >= self.ts:
            self.ts, self.xbt = ts, xbt

    def traded(self, native: str, spec: ins.Spec, ts: int, price: float, each: float) -> None:
        """A trade with BitMEX's homeNotional (`each`: BASE per contract)."""
        if spec.quanto:
            self.note(ts, each / spec.quanto)
        elif native == XBT_USD:
            self.note(ts, price)

    def size(self, quanto: float, ts: int) -> float:
        """BASE per contract of a quanto (`quanto` XBT per point) at time `ts`; 0 when no
        XBT price is near enough."""
        return round(quanto * self.xbt, 12) if abs(ts - self.ts) <= MAX_GAP_US else 0.0

    def sized(self, spec: ins.Spec, ts: int) -> ins.Spec:
        """A quanto's spec with the contract size at time `ts`; any other spec as it is."""
        if not spec.quanto:
            return spec
        return ins.Spec(spec.symbol, spec.kind, self.size(spec.quanto, ts), False, spec.quanto)


SHARED = Rates()  # Venue.parse's (one connection's frames); Venue.session makes one each


def quote(rates: Rates, venue: str, spec: ins.Spec, native: str, bid: float, bid_size: float,
          ask: float, ask_size: float, exchange_ts: int, received_ts: int):
    """ins.quote with quanto sizes in BASE; XBTUSD quotes update the XBT price."""
    if native == XBT_USD and bid and ask:
        rates.note(exchange_ts, (bid + ask) / 2)
    elif spec.quanto and (size := rates.size(spec.quanto, exchange_ts)):
        return _new(Quote, (venue, spec.symbol, native, bid, round(bid_size * size, 12), ask,
                            round(ask_size * size, 12), exchange_ts, received_ts, spec.kind, 0,
                            bid_size, ask_size, size))
    return ins.quote(venue, spec, native, bid, bid_size, ask, ask_size, exchange_ts, received_ts)


def sessions(venue: str, parse):
    """Venue.session: a parser with its own Rates for each connection (or capture file)."""
    def session():
        rates = Rates()
        return safe_parse(venue, lambda frame, received_ts: parse(frame, received_ts, rates))

    return session


def frames(native: Callable[[str], str], catalog: ins.Catalog) -> declare.Frames:
    """BitMEX's {"op", "args": ["quote:ETHUSD", ...]} messages; subscribing quotes or the
    orderBookL2 of a quanto contract also subscribes `instrument:.BXBT`, the XBT price their
    sizes need: before the books, whose `partial` is invalid without that price."""
    plain = declare.op_args(lambda c, s: f"{c}:{native(s)}")

    def build(op: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
        out = plain(op, symbols, channels)
        books = "orderBookL2" in channels
        if op == "subscribe" and ("quote" in channels or books) and any(  # kept for the other quantos
                getattr(catalog.known(native(s)), "quanto", 0.0) for s in symbols):
            out.insert(0 if books else len(out), declare.dumps({"op": op, "args": [f"instrument:{BXBT}"]}))
        return out

    return build


def other_table(table: object, data: list, rates: Rates) -> ParseResult:
    """A table feedhouse stores nothing of; the .BXBT index's price updates `rates`."""
    if table == "instrument":
        for row in data:
            if row.__class__ is not dict or row.get("symbol") != BXBT:
                continue
            price = row.get("lastPrice") or row.get("markPrice")  # an update: changed fields
            if price.__class__ not in (int, float) or not price > 0:
                continue
            try:
                rates.note(declare.us_from_iso_z(row["timestamp"]), float(price))
            except (KeyError, TypeError, ValueError, FrameError):
                continue  # an index row without a usable time: not a price to size with
    return ParseResult(ignored=1)

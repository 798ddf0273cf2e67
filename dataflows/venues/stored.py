"""Stored rows in contracts: the step after the migrations that converts them to BASE.

Migrations 010 and 012 convert what the stored rows themselves say (inverse contracts:
a fixed QUOTE value each). Linear contracts whose size per contract the rows do not
record (OKX USDT/USDC swaps, futures and options; BitMEX linear and quanto contracts)
are stored with contract_size 0: amounts and quote sizes still in contracts. SQL cannot
know those sizes, the instrument lists can: `convert_stored` looks each such instrument
up in the venue's catalog (a fetched or cached list, else the specs shipped under
dataflows/venues/specs/), rewrites its rows like the live adapters write them (trades:
amount and contract_size in place; quotes: sizes are in the sorting key, so the rows are
written again converted and the old ones deleted), rebuilds the candles of the trades'
minutes, and names in one log line the instruments no list sizes (their rows keep
contract_size 0). BitMEX quanto contracts, whose size follows the XBT price, are converted
at the store's XBT price of each row's minute (stored_quanto.py); rows with none near
enough keep contract_size 0 and are named in the same line. `feedhouse init` runs it right after the migrations, in their
warehouse session (`init_schema(after=convert_stored)`), every time; `feedhouse run`
when its start applied migrations. With nothing to convert it costs two small queries.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from dataflows.venues import VENUES
from dataflows.venues.instruments import Spec
from dataflows.venues.stored_quanto import MAX_GAP_S, convert_quanto
from feedhouse.core.sqlsafe import string_literal
from feedhouse.store.candles import build_minutes

log = logging.getLogger(__name__)

_PENDING = (
    "SELECT 'trades', venue, native_symbol, count() FROM market.trades WHERE contract_size = 0 "
    "GROUP BY venue, native_symbol UNION ALL "
    "SELECT 'quotes', venue, native_symbol, count() FROM market.quotes WHERE contract_size = 0 "
    "GROUP BY venue, native_symbol"
)
_SYNC = {"mutations_sync": 2}  # the rewrite is done when the call returns


@dataclass
class Converted:
    trades: int = 0  # rows converted
    quotes: int = 0
    unknown: Counter = field(default_factory=Counter)  # "venue/native" -> rows left
    unpriced: Counter = field(default_factory=Counter)  # quanto rows with no XBT price near

    def unknown_line(self) -> str:
        def names(rows: Counter) -> str:
            return ", ".join(f"{name} ({n})" for name, n in sorted(rows.items()))

        why = ([f"no instrument list gives a size for {names(self.unknown)}"] if self.unknown else []) + (
            [f"no XBT price within {MAX_GAP_S // 60} min of the quanto rows of {names(self.unpriced)}"]
            if self.unpriced else [])
        left = sum(self.unknown.values()) + sum(self.unpriced.values())
        return f"{left} stored rows stay in contracts (contract_size 0): {'; '.join(why)}"


def known_spec(venue: str, native: str) -> Spec | None:
    """The listed spec of an instrument, if any list (fetched, cached, shipped) has it."""
    adapter = VENUES.get(venue)
    catalog = getattr(adapter, "catalog", None)
    spec = catalog.known(native) if catalog is not None else None
    return spec if spec is not None and spec.contract_size > 0 else None


def quanto_spec(venue: str, native: str) -> Spec | None:
    """The listed spec of a quanto contract (size per XBT price, BitMEX), if any."""
    catalog = getattr(VENUES.get(venue), "catalog", None)
    spec = catalog.known(native) if catalog is not None else None
    return spec if spec is not None and spec.quanto > 0 else None


def _by_instrument(specs: dict[tuple[str, str], Spec], value) -> str:
    """multiIf over (venue, native_symbol): a per-instrument constant in SQL."""
    arms = [f"venue = {string_literal(v)} AND native_symbol = {string_literal(n)}, {value(s)}" for (v, n), s in specs.items()]
    return f"multiIf({', '.join(arms)}, 0)"


def _base(size: str, price: str, cs: str = "cs", inv: str = "inv") -> str:
    """A native size in BASE as ins.Spec.base computes it (cs, inv: per instrument)."""
    x = f"{size} * {cs} / {price}"
    return (f"if({inv} = 1, if({price} > 0, if({x} >= 1e-4, round({x}, 8), {x}), 0), "
            f"round({size} * {cs}, 12))")


def convert_stored(client) -> Converted:
    done = Converted()
    specs: dict[tuple[str, str], Spec] = {}
    rows: Counter = Counter()
    quanto: dict[str, dict[str, Spec]] = {}
    for table, venue, native, n in client.query(_PENDING).result_rows:
        spec = known_spec(venue, native)
        if spec is None and (by_price := quanto_spec(venue, native)) is not None:
            quanto.setdefault(venue, {})[native] = by_price
        elif spec is None:
            done.unknown[f"{venue}/{native}"] += n
        else:
            specs[(venue, native)] = spec
            rows[table] += n
    if specs:
        cs = _by_instrument(specs, lambda s: repr(float(s.contract_size)))
        inv = _by_instrument(specs, lambda s: int(s.inverse))
        where = f"contract_size = 0 AND ({_by_instrument(specs, lambda s: 1)}) = 1"
        minutes = [int(m.timestamp()) for (m,) in client.query(
            f"SELECT DISTINCT toStartOfMinute(exchange_ts) FROM market.trades WHERE {where}").result_rows]
        client.command(
            f"ALTER TABLE market.trades UPDATE amount = {_base('native_amount', 'price', cs, inv)}, "
            f"contract_size = {cs} WHERE {where}", settings=_SYNC)
        client.command(
            "INSERT INTO market.quotes (venue, symbol, native_symbol, bid_price, bid_size, ask_price, "
            "ask_size, exchange_ts, received_ts, instrument_type, update_id, native_bid_size, "
            "native_ask_size, contract_size, inserted_ts, feed) "
            f"SELECT venue, symbol, native_symbol, bid_price, {_base('native_bid_size', 'bid_price')}, "
            f"ask_price, {_base('native_ask_size', 'ask_price')}, exchange_ts, received_ts, "
            "instrument_type, update_id, native_bid_size, native_ask_size, cs, inserted_ts, feed "
            f"FROM (SELECT *, {cs} AS cs, {inv} AS inv FROM market.quotes WHERE {where})")
        client.command(f"ALTER TABLE market.quotes DELETE WHERE {where}", settings=_SYNC)
        build_minutes(client, minutes)
        done.trades, done.quotes = rows["trades"], rows["quotes"]
    for venue, by_native in quanto.items():
        converted, left, minutes = convert_quanto(client, venue, by_native)
        done.unpriced.update(left)
        done.trades += converted["trades"]
        done.quotes += converted["quotes"]
        build_minutes(client, minutes)
    if done.unknown or done.unpriced:
        log.warning(done.unknown_line())
    return done

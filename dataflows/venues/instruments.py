"""One symbol rule for every venue, instrument types, and amounts in base units.

Symbols (docs/venues.md):
    spot            BASE-QUOTE                     BTC-USDT
    perpetual       BASE-QUOTE-PERP                BTC-USDT-PERP
    dated future    BASE-QUOTE-YYMMDD              BTC-USD-240628
    option          BASE-QUOTE-YYMMDD-STRIKE-C|P   BTC-USD-240628-60000-C
Inverse (coin-margined) perpetuals and futures, whose contract is worth a fixed QUOTE
value and is margined in BASE, carry `-INV` before the expiry part on every venue:
`BTC-USD-INV-PERP`, `BTC-USD-INV-251226` (`inverse_symbol`), so an inverse and a linear
contract on one pair are never one symbol; `plain_symbol` drops the marker again.
`kind_of(symbol)` reads the instrument type back from a symbol of that shape.

Amounts: `market.trades.amount` is in BASE units. A contract venue's own size is kept as
`native_amount`, with `contract_size`, the value of one unit of `native_amount`:
in BASE for linear contracts (amount = native_amount * contract_size) and in QUOTE for
inverse ones (amount = native_amount * contract_size / price). Spot rows: native_amount =
amount, contract_size = 1.

Contract specs come from the venues' instrument lists (`Catalog.load`: the recorded or
documented replies under feedhouse/app/sessions/rest/ in tests; `refresh` fetches them
on start in live mode and caches them under the `instruments_dir` setting or
~/.cache/feedhouse/instruments), then from the specs shipped with feedhouse
(dataflows/venues/specs/<venue>.json, built from recorded lists by
tests/golden/build_specs.py); without either a venue's documented rule applies.
"""

from __future__ import annotations

import calendar
import importlib.resources
import logging
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from dataflows.venues.common import FrameError, normalizer
from feedhouse.core.records import Quote, Trade

log = logging.getLogger(__name__)

SPOT, PERPETUAL, FUTURE, OPTION = "spot", "perpetual", "future", "option"
KINDS = (SPOT, PERPETUAL, FUTURE, OPTION)
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
MONTH_CODES = "FGHJKMNQUVXZ"  # futures month letters: H = March


@dataclass(frozen=True, slots=True)
class Spec:
    """What a native symbol is: its normalized symbol, type and contract terms."""

    symbol: str
    kind: str = SPOT
    contract_size: float = 1.0  # value of one native size unit (BASE; QUOTE if inverse)
    inverse: bool = False  # 0 = unknown: sizes stay contracts (reported, see stored.py)
    quanto: float = 0.0  # BitMEX quanto: XBT per QUOTE point (size per price: bitmex_units.py)

    def base(self, size: float, price: float) -> float:
        """The venue's size as an amount in BASE units (unknown size: the size as given)."""
        if not self.contract_size:
            return size
        if self.inverse:
            return base_of_quote(size * self.contract_size, price)
        if self.contract_size == 1.0:
            return size
        return round(size * self.contract_size, 12)


def base_of_quote(value: float, price: float) -> float:
    """A QUOTE value at `price` in BASE units, to the satoshi (8 decimals) where that is
    exact enough: 10 USD of BTC at 8,950 -> 0.00111732."""
    amount = value / price
    return round(amount, 8) if amount >= 1e-4 else float(f"{amount:.6g}")


INV = "INV"  # the inverse marker: BTC-USD-INV-PERP


def inverse_symbol(symbol: str) -> str:
    """'BTC-USD-PERP' -> 'BTC-USD-INV-PERP', 'BTC-USD-251226' -> 'BTC-USD-INV-251226'
    (already marked: unchanged)."""
    parts = symbol.split("-")
    if len(parts) < 3 or parts[2] == INV:
        return symbol
    return "-".join([*parts[:2], INV, *parts[2:]])


def plain_symbol(symbol: str) -> str:
    """The symbol without its inverse marker (what the venues' own names encode)."""
    parts = symbol.split("-")
    return "-".join(parts[:2] + parts[3:]) if len(parts) > 3 and parts[2] == INV else symbol


def is_inverse(symbol: str) -> bool:
    return symbol.split("-")[2:3] == [INV]


def kind_of(symbol: str) -> str:
    parts = symbol.split("-")
    if len(parts) > 3 and parts[2] == INV:
        del parts[2]
    if parts[-1] == "PERP":
        return PERPETUAL
    if len(parts) == 3 and len(parts[2]) == 6 and parts[2].isdigit():
        return FUTURE
    if len(parts) == 5 and parts[4] in ("C", "P") and parts[2].isdigit():
        return OPTION
    return SPOT


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def from_ddmmmyy(text: str) -> str:
    """Deribit/Bybit expiries: '27MAY20' or '5JUN20' -> '200527' / '200605'."""
    day, month, year = text[:-5], text[-5:-2], text[-2:]
    if not (day.isdigit() and year.isdigit() and month in _MONTHS):
        raise FrameError(f"bad expiry {text!r}")
    return yymmdd(date(2000 + int(year), _MONTHS[month], int(day)))


def last_friday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return date(year, month, last.day - (last.weekday() - 4) % 7)


def from_month_code(code: str) -> str:
    """BitMEX/Bybit month codes ('U21': September 2021) expire on the month's last Friday:
    'U21' -> '210924'."""
    month = MONTH_CODES.find(code[:1]) + 1
    if not month or not code[1:].isdigit() or len(code) != 3:
        raise FrameError(f"bad month code {code!r}")
    return yymmdd(last_friday(2000 + int(code[1:]), month))


def spec_of(symbol: str, contract_size: float = 1.0, inverse: bool = False) -> Spec:
    """The spec of a normalized symbol; inverse contracts get the `-INV` marker."""
    if inverse:
        symbol = inverse_symbol(symbol)
    return Spec(symbol, kind_of(symbol), contract_size, inverse)


class Catalog:
    """A venue's specs by native symbol: `rule(native) -> Spec` (checked and cached once per
    symbol, like common.normalizer) with instrument-list entries taking precedence."""

    def __init__(self, venue: str, rule: Callable[[str], Spec],
                 lister: Callable[[object], Iterable[tuple[str, Spec]]] | None = None,
                 urls: tuple[str, ...] = ()) -> None:
        self.venue, self.rule, self.lister, self.urls = venue, rule, lister, urls
        self.listed: dict[str, Spec] = {}
        self.shipped = shipped_specs(venue)
        self._cache: dict[str, Spec] = {}
        self._cache_read = lister is None
        self._check = normalizer(lambda native: self._lookup(native).symbol)
        self.cached = self._cache.get  # hot paths: `cached(native) or catalog(native)`

    def _lookup(self, native: str) -> Spec:
        if not self._cache_read:  # a list fetched by an earlier live run, if any
            self._cache_read = True
            self.load_cached()
        spec = self.listed.get(native) or self.shipped.get(native) or self.rule(native)
        if spec.kind not in KINDS:
            raise FrameError(f"bad instrument type {spec.kind!r}")
        return spec

    def __call__(self, native: str) -> Spec:
        try:
            return self._cache[native]
        except (KeyError, TypeError):
            pass
        self._check(native)  # the contract's symbol checks (raises FrameError)
        spec = self._cache[native] = self._lookup(native)
        return spec

    def load(self, replies: Iterable[object]) -> int:
        """Take the specs of instrument-list replies (parsed JSON); returns how many."""
        if self.lister is None:
            return 0
        found: dict[str, Spec] = {}
        for reply in replies:
            try:
                found.update(self.lister(reply))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("%s: instrument list reply not understood (%r)", self.venue, exc)
        self.listed.update(found)
        self._cache.clear()
        return len(found)

    def load_cached(self) -> int:
        return self.load(_cached_replies(self.venue))


    def known(self, native: str) -> Spec | None:
        """The listed (fetched, cached or shipped) spec of `native`; None when no list
        has it (the rule's guesses do not count)."""
        if not self._cache_read:
            self._cache_read = True
            self.load_cached()
        return self.listed.get(native) or self.shipped.get(native)


def shipped_specs(venue: str) -> dict[str, Spec]:
    """The specs shipped as package data: {"source", "specs": {native: [symbol,
    contract_size, inverse(, quanto)]}}; {} when feedhouse ships none for `venue`."""
    try:
        text = importlib.resources.files("dataflows.venues").joinpath(f"specs/{venue}.json").read_bytes()
    except (OSError, ValueError):
        return {}
    return {native: Spec(symbol, kind_of(symbol), float(size), bool(inverse), float(*quanto or [0]))
            for native, (symbol, size, inverse, *quanto) in orjson.loads(text)["specs"].items()}


def _cached_replies(venue: str) -> list[object]:
    try:
        return list(orjson.loads((cache_dir() / f"{venue}.json").read_bytes()).values())
    except (OSError, ValueError, AttributeError):
        return []


def read_rest(path: Path | str) -> dict[str, object]:
    """Recorded REST replies (`<url> -> <epoch>: <json>` lines, '#' comments) by URL."""
    replies: dict[str, object] = {}
    for line in Path(path).read_text().splitlines():
        if not line or line.startswith("#") or " -> " not in line.partition(": ")[0]:
            continue  # comments, and the recorder's own `configuration:` line
        head, _, body = line.partition(": ")
        replies[head.split(" -> ", 1)[0]] = orjson.loads(body)
    return replies


_cache_dir = Path.home() / ".cache" / "feedhouse" / "instruments"


def set_cache_dir(folder: Path) -> None:
    """Where fetched instrument lists are cached: the `instruments_dir` setting, set by
    the exchange source at start (catalogs are module-level, one per venue)."""
    global _cache_dir
    _cache_dir = folder


def cache_dir() -> Path:
    return _cache_dir


def refresh(catalog: Catalog, feed_url: str, hosts: tuple[str, ...], timeout: float = 10.0) -> int:
    """Live mode only (the feed connects to one of the venue's own hosts): fetch the
    instrument lists, cache them, and load them; on failure load the cached copy.
    Recorded sessions on loopback need no refresh. Never raises."""
    if not catalog.urls or (urlsplit(feed_url).hostname or "").lower() not in hosts:
        return 0
    path = cache_dir() / f"{catalog.venue}.json"
    try:
        replies = {}
        for url in catalog.urls:
            with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - https
                replies[url] = orjson.loads(reply.read())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(replies))
    except (OSError, ValueError) as exc:
        log.warning("%s: instrument list unavailable (%s); using the cached copy", catalog.venue, exc)
        return catalog.load_cached()
    return catalog.load(replies.values())


def simple(venue: str, normalize: Callable[[str], str]) -> Catalog:
    """A catalog where the symbol says it all (spot venues, base-unit sizes)."""
    return Catalog(venue, lambda native: spec_of(normalize(native)))


_new = tuple.__new__  # Trade(...) without the NamedTuple's Python-level __new__


def trade(venue: str, spec: Spec, native: str, ident: str, price: float, size: float,
          side: str, exchange_ts: int, received_ts: int) -> Trade:
    """A trade from its fields: the amount in BASE, the venue's size kept beside it."""
    size_cs = spec.contract_size
    amount = size if size_cs == 1.0 and not spec.inverse else spec.base(size, price)
    return _new(Trade, (venue, spec.symbol, native, ident, price, amount, side, exchange_ts,
                        received_ts, spec.kind, size, size_cs))


def quote(venue: str, spec: Spec, native: str, bid: float, bid_size: float, ask: float,
          ask_size: float, exchange_ts: int, received_ts: int, update_id: int = 0) -> Quote:
    """A best bid/ask from its fields: sizes in BASE (each side at its own price), the
    venue's sizes kept beside them. An empty side (price 0) stays 0."""
    size_cs = spec.contract_size
    if size_cs == 1.0 and not spec.inverse:
        return _new(Quote, (venue, spec.symbol, native, bid, bid_size, ask, ask_size, exchange_ts,
                            received_ts, spec.kind, update_id, bid_size, ask_size, 1.0))
    inverse = spec.inverse
    return _new(Quote, (
        venue, spec.symbol, native, bid,
        spec.base(bid_size, bid) if bid_size and (bid or not inverse) else 0.0, ask,
        spec.base(ask_size, ask) if ask_size and (ask or not inverse) else 0.0,
        exchange_ts, received_ts, spec.kind, update_id, bid_size, ask_size, size_cs))


def update_id(value: object) -> int:
    """A venue's best bid/ask update id (absent: 0, then every field identifies the update)."""
    if value is None:
        return 0
    if value.__class__ is not int or not 0 <= value < 2**63:  # type: ignore[operator]
        raise FrameError(f"bad update id {str(value)[:40]!r}")
    return value  # type: ignore[return-value]

"""What every venue adapter declares: endpoint, handshake, heartbeat rules, symbols, parse.

An adapter module builds one `Venue` (or several, for one stream format on several hosts)
and registers it in `dataflows.venues.VENUES`. Parsing never raises: a frame yields
trades, quotes, an `ignored` count (heartbeats, acks, book updates) or `Invalid` records
with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from feedhouse.records import ParseResult

Frame = str | bytes
ParseFn = Callable[[Frame, int], ParseResult]  # (frame, received_ts µs) -> result


@dataclass(frozen=True)
class Venue:
    name: str  # registry key, e.g. "binance", "binance_futures"
    url: str  # default public endpoint (overridable per feed in settings)
    hosts: tuple[str, ...]  # every host of this venue/format, for capture inference
    parse: ParseFn
    # (symbols normalized BASE-QUOTE, channels "trades"/"quotes") -> frames to send
    subscribe: Callable[[Sequence[str], Sequence[str]], list[str]]
    unsubscribe: Callable[[Sequence[str], Sequence[str]], list[str]] = lambda s, c: []
    # Some venues put the subscription in the URL (Binance combined streams).
    url_for: Callable[[str, Sequence[str], Sequence[str]], str] | None = None
    # Heartbeats: a frame the client sends every `ping_interval_s` (None: protocol pings
    # only), and a function answering a venue's own ping frame (or None when it is not one).
    ping_interval_s: float | None = None
    ping_frame: str | None = None
    answer_ping: Callable[[Frame], Frame | None] | None = None
    native_symbol: Callable[[str], str] = field(default=lambda s: s)
    normalize_symbol: Callable[[str], str] = field(default=lambda s: s)
    channels: tuple[str, ...] = ("trades",)
    # Gap detection (dataflows/sources/sequence.py has the defaults per venue): the
    # (stream, number) pairs a raw frame carries that must increase by exactly one per
    # stream, e.g. Binance aggTrade ids per symbol. None: the source uses its default.
    sequence_of: Callable[[Frame], list[tuple[str, int]]] | None = None

"""What every venue adapter declares: endpoint, handshake, heartbeat rules, symbols, parse.

An adapter module builds one `Venue` (or several, for one stream format on several hosts)
and registers it in `dataflows.venues.VENUES`. Parsing never raises: a frame yields
trades, quotes, an `ignored` count (heartbeats, acks, book updates) or `Invalid` records
with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dataflows.parse.trade_columns import TradeColumns
from feedhouse.core.records import Invalid, ParseResult, Quote, Trade

Frame = str | bytes
ParseFn = Callable[[Frame, int], ParseResult]  # (frame, received_ts µs) -> result
Messages = Sequence[tuple[int, Frame]]  # (received_ts µs, frame), as in MessageBatch


@dataclass(slots=True)
class BatchResult:
    """What a micro-batch of frames yielded, merged, with each frame's outcome kept.

    `counts[i]` is what frame i yielded: its number of records (> 0), 0 when ignored,
    -1 when invalid (no record; its reason is in `invalid` under index i). Trades come
    as columns (dataflows/parse/trade_columns.py), in frame order.
    """

    trades: TradeColumns = field(default_factory=TradeColumns.empty)
    quotes: list[Quote] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    invalid: list[tuple[int, Invalid]] = field(default_factory=list)

    def record(self, index: int, result: ParseResult) -> list[Trade]:
        """Take frame `index`'s ParseResult (the per-frame path): its outcome, quotes and
        invalid records; returns its trades (the caller makes them columns)."""
        n = len(result.trades) + len(result.quotes)
        self.quotes.extend(result.quotes)
        self.counts[index] = n if n else (-1 if result.invalid else 0)
        for bad in result.invalid:
            self.invalid.append((index, bad))
        return result.trades


ParseManyFn = Callable[[Messages], BatchResult]


def looping(parse: ParseFn) -> ParseManyFn:
    """The default batch parse: the per-frame parse, frame after frame."""

    def parse_many(messages: Messages) -> BatchResult:
        out = BatchResult(counts=[0] * len(messages))
        rows: list[Trade] = []
        for i, (received_ts, frame) in enumerate(messages):
            rows += out.record(i, parse(frame, received_ts))
        out.trades = TradeColumns.from_rows(rows)
        return out

    return parse_many


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
    # Gap detection (declare.sequence_check; dataflows/sources/sequence.py tracks it): the
    # (stream, number) pairs a raw frame carries that must increase by exactly one per
    # stream, e.g. Binance aggTrade ids per symbol. None: the venue has no gap check.
    sequence_of: Callable[[Frame], list[tuple[str, int]]] | None = None
    # Batch parse of a micro-batch (a fast decoder for the common trade frames, the
    # per-frame `parse` for the rest); results equal looping `parse`. None: that loop.
    parse_many: ParseManyFn | None = None
    # Registry key ("" = name). One venue may have variants for its endpoints (Bybit's
    # spot / linear / inverse paths give the same frames different meanings): each is a
    # Venue with the same name and its own key, and `select(url)` names the key to use.
    key: str = ""
    select: Callable[[str], str] | None = None
    # Instrument specs (dataflows/venues/instruments.py): refreshed on start in live mode.
    catalog: object | None = None
    # Venues whose frames depend on earlier frames of the same connection (Bitfinex's
    # channel ids): a fresh per-connection parser. `parse` serves one connection only.
    session: Callable[[], ParseFn] | None = None

    def parser(self) -> tuple[ParseFn, ParseManyFn]:
        """(parse, parse_many) for one connection: its own state where the venue has any."""
        if self.session is None:
            return self.parse, self.parse_many  # type: ignore[return-value]
        parse = self.session()
        return parse, looping(parse)

    def __post_init__(self) -> None:
        if self.parse_many is None:
            object.__setattr__(self, "parse_many", looping(self.parse))
        if not self.key:
            object.__setattr__(self, "key", self.name)

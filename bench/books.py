"""Book path CPU cost: recorded book frames -> book parser -> BookColumns -> book state
(sequence and checksum checks) -> Arrow table of market.book_updates rows.

Corpus: the book-bearing frames of the recorded sessions with a book parser (OKX, Bitget,
Bybit, Coinbase Exchange, Binance USD-M), parsed in batches of 500 frames per venue as a
source poll would hand them over. Counted in level updates per CPU second of this process
(the machine is shared). Not end to end: no WebSocket, no sink, no ClickHouse insert --
issue 21's `book_levels_per_s` / `book_cpu_us_per_level` need the live wiring first.
"""

from __future__ import annotations

from bench.common import Config, Figure, capture_path, cpu_timed, measured, module_command
from dataflows.books.capture import _BAD_FRAME
from dataflows.books.columns import BookColumns
from dataflows.books.parsers import book_parser
from dataflows.books.state import Books
from dataflows.sources.capture import read_capture
from feedhouse.core.records import us_from_s

SESSIONS = {"OKX.ws.1.0": "okx", "BITGET.ws.1.0": "bitget", "BYBIT.ws.25.0": "bybit",
            "COINBASE.ws.28.0": "coinbase_exchange", "BINANCE_FUTURES.ws.1.0": "binance_futures"}
BATCH = 500


def _frames(name: str) -> list[tuple[str | bytes, int]]:
    return [(e.data, us_from_s(e.ts)) for e in read_capture(capture_path(name))
            if e.kind == "received"]


def one_venue(name: str, venue: str, seconds: float) -> float:
    events = _frames(name)
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]

    def one_pass() -> int:
        parse, books, levels = book_parser(venue), Books(), 0
        for chunk in chunks:
            frames = []
            for data, ts in chunk:
                try:
                    frames += parse(data, ts)
                except _BAD_FRAME:
                    pass
            columns = BookColumns.of(frames)
            books.apply(columns.frames)
            columns.to_arrow(venue)
            levels += len(columns)
        return levels

    return cpu_timed(one_pass, seconds)


def run(cfg: Config) -> list[Figure]:
    command = module_command("books", cfg)
    figures = []
    overall: list[float] = []
    for _ in range(max(1, min(cfg.repeats, 3))):
        rates = [one_venue(name, venue, cfg.normalize_s) for name, venue in SESSIONS.items()]
        overall.append(len(rates) / sum(1 / r for r in rates))  # harmonic mean: equal levels
        for (name, _venue), rate in zip(SESSIONS.items(), rates, strict=True):
            figures.append((name, rate))
    settings = {"sessions": list(SESSIONS), "batch_frames": BATCH}
    out = [
        measured("book_parse_levels_per_s", "levels/s (CPU)", command, overall,
                 settings=settings, note="parse + columns + state + Arrow; no insert"),
        measured("book_parse_cpu_us_per_level", "us/level (CPU)", command,
                 [1e6 / r for r in overall], settings=settings),
    ]
    for name in SESSIONS:
        rates = [r for n, r in figures if n == name]
        out.append(measured(f"book_parse_levels_per_s.{SESSIONS[name]}", "levels/s (CPU)",
                            command, rates, settings=settings))
    return out

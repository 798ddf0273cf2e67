"""Order books end to end: session server at max speed -> `feedhouse run` -> market.book_updates.

Corpus (built once per size in the bench work folder): the book frames of the recorded
sessions whose venues have a book parser and a lap shifter (OKX, Coinbase Exchange, Bybit
legacy, Binance USD-M), repeated lap after lap with the session server's own shifter (new
times and sequence ids per lap, so every lap is new data and sequences continue) until the
venues hold `cfg.book_levels` level updates. Feeds subscribe `channels: [books]` only.

Per repeat, as bench/e2e.py does for trades: a fresh home, `feedhouse session-server
--speed max` in its own process, `feedhouse run` (defaults: dedup and recovery on) in
another; levels/s = level updates committed between the first status with rows and the
first with all of them, over that wall time; CPU µs/level = the ingest process's CPU over
the same window / those levels. Afterwards the store must hold every level update once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.common import Config, Figure, capture_path, module_command
from bench.e2e import one_run, rate_and_cpu
from bench.served import cached, capture_header

SESSIONS = {
    "okx": "OKX.ws.1.0",
    "coinbase_exchange": "COINBASE.ws.28.0",
    "bybit": "BYBIT.ws.25.0",
    "binance_futures": "BINANCE_FUTURES.ws.1.0",
}


@dataclass
class BookServed:
    venue: str
    file: str
    frames: int
    trades: int  # level updates in the file (named `trades` for bench.e2e.one_run)
    symbols: list[str]
    laps: int


def _write(venue: str, capture: str, out: Path, min_levels: int) -> BookServed:
    from dataflows.books.columns import BookColumns
    from dataflows.books.parsers import book_parser
    from feedhouse.app.session_server.stream import RecordedStream

    stream = RecordedStream.load(capture_path(capture))
    parse = book_parser(venue, stream.venue.key if stream.venue else None)
    header = capture_header(capture)
    books = [i for i, frame in enumerate(stream.frames) if _book(parse, frame)]
    t0, levels, frames, lap, symbols = 1_700_000_000.0, 0, 0, 0, set()
    with out.open("w", encoding="utf-8") as fh:
        fh.write("\n".join(header) + "\n")
        while levels < min_levels:
            found = []
            for i in books:
                g = lap * len(stream) + i
                frame = stream.frame(g)
                found += parse(frame, 1)
                fh.write(f"{t0 + stream.time_of(g):.6f}: {frame}\n")
                frames += 1
            columns = BookColumns.of(found)
            levels += len(columns)
            symbols |= {f.symbol for f in columns.frames}
            lap += 1
    return BookServed(venue, out.name, frames, levels, sorted(symbols), lap)


def _book(parse, frame) -> bool:
    try:
        return bool(parse(frame, 1))
    except Exception:  # noqa: BLE001 - not a book frame
        return False


def build(folder: Path, total_levels: int) -> list[BookServed]:
    per = total_levels // len(SESSIONS) + 1
    return cached(folder, "total_levels", total_levels, BookServed,
                  lambda: [_write(v, cap, folder / cap, per) for v, cap in SESSIONS.items()])


def feeds(served: list[BookServed], port: int) -> list[dict]:
    return [{"name": s.venue, "venue": s.venue, "url": f"ws://127.0.0.1:{port}/{s.file}",
             "symbols": s.symbols, "channels": ["books"]} for s in served]


def stored_levels(config: Path) -> tuple[int, int]:
    from feedhouse.core.config import load_settings
    from feedhouse.store.client import warehouse

    with warehouse(load_settings(config)) as client:
        return client.query(
            "SELECT count(), uniqExact(venue, symbol, exchange_ts, update_id, is_snapshot, "
            "side, price, amount) FROM market.book_updates").result_rows[0]


def run(cfg: Config) -> list[Figure]:
    folder = cfg.workdir / f"books-{cfg.book_levels}" / "captures"
    served = build(folder, cfg.book_levels)
    expected = sum(s.trades for s in served)
    results = []
    for r in range(cfg.e2e_repeats):
        out = one_run(cfg, served, cfg.workdir / f"books_e2e{r}", timeout_s=60 + expected / 20_000,
                      folder=folder, feed_list=feeds, count=stored_levels)
        if not out["unique_stored"] == expected:
            raise RuntimeError(f"store holds {out['stored']} rows, {out['unique_stored']} "
                               f"distinct, expected {expected}")
        results.append(out)
    settings = {
        "venues": {s.venue: {"file": s.file, "frames": s.frames, "levels": s.trades,
                             "laps": s.laps} for s in served},
        "level_updates": expected,
        "server": "feedhouse session-server --speed max (own process)",
        "ingest": "feedhouse run, feeds with channels [books] (defaults: dedup, recovery on)",
        "window": "first status with rows -> first status with all rows (wall clock)",
        "ingest_cpu_share": [round(r["ingest_cpu_share"], 2) for r in results],
        "server_cpu_share": [round(r["server_cpu_share"], 2) for r in results],
    }
    cmd = module_command("books_e2e", cfg)
    return rate_and_cpu(results, cmd, settings, ("book_levels_per_s", "levels/s", ">= 300,000"),
                        ("book_cpu_us_per_level", "µs/level", "<= 3"))

"""Parse throughput of venue adapters A on looped real captures (one core, one process).

    .venv/bin/python bench/bench_venues_a.py [--seconds 1.0]

Per capture, two corpora: `all` = every received frame of the capture (books, tickers,
heartbeats included: what a feed really parses), `trades` = only the frames that carry
trades (the figure comparable to cryptofeed's normalized trades/s). Each corpus is looped
for --seconds of CPU time (best of three thirds; CPU time of this process, since the
machine is shared). Prints one JSON object per line, then a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataflows.capture import read_capture  # noqa: E402
from dataflows.venues import get_venue  # noqa: E402
from feedhouse.records import us_from_s  # noqa: E402

CAPTURES = ROOT / "tests" / "fixtures" / "exchanges"
CASES = [
    ("binance", "BINANCE.ws.1.0"),
    ("binance_futures", "BINANCE_FUTURES.ws.1.0"),
    ("coinbase", "COINBASE.ws.28.0"),
    ("kraken", "KRAKEN.ws.48.0"),
    ("okx", "OKX.ws.1.0"),
    ("bybit", "BYBIT.ws.25.0"),
    ("bitfinex", "BITFINEX.ws.11.0"),
    ("bitstamp", "BITSTAMP.ws.1.0"),
]


def frames_of(name: str) -> list[tuple[int, str | bytes]]:
    return [
        (us_from_s(e.ts), e.data) for e in read_capture(CAPTURES / name) if e.kind == "received"
    ]


def run_once(parse, frames: list[tuple[int, str | bytes]], seconds: float):
    n_frames = n_trades = n_quotes = 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for ts, frame in frames:
            result = parse(frame, ts)
            n_trades += len(result.trades)
            n_quotes += len(result.quotes)
        n_frames += len(frames)
        now = time.process_time()
        if now >= deadline:
            break
    return n_frames, n_trades, n_quotes, now - start


def run(parse, frames: list[tuple[int, str | bytes]], seconds: float) -> dict:
    """Best of three runs, timed in this process's CPU seconds (the machine is shared)."""
    n_frames, n_trades, n_quotes, elapsed = min(
        (run_once(parse, frames, seconds / 3) for _ in range(3)), key=lambda r: r[3] / r[0]
    )
    return {
        "frames_per_s": round(n_frames / elapsed),
        "trades_per_s": round(n_trades / elapsed),
        "quotes_per_s": round(n_quotes / elapsed),
        "frames": n_frames,
        "seconds": round(elapsed, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rows = []
    for venue_name, capture in CASES:
        venue = get_venue(venue_name)
        frames = frames_of(capture)
        for ts, frame in frames:  # warm up (and let Bitfinex learn its channel ids)
            venue.parse(frame, ts)
        trade_frames = [(ts, f) for ts, f in frames if venue.parse(f, ts).trades]
        for corpus, subset in (("all", frames), ("trades", trade_frames)):
            row = {"venue": venue_name, "capture": capture, "corpus": corpus}
            row.update(run(venue.parse, subset, args.seconds))
            rows.append(row)
            print(orjson.dumps(row).decode(), flush=True)
    print(f"\n{'venue':<16} {'corpus':<7} {'frames/s':>10} {'trades/s':>10} {'quotes/s':>10}")
    for row in rows:
        print(
            f"{row['venue']:<16} {row['corpus']:<7} {row['frames_per_s']:>10,} "
            f"{row['trades_per_s']:>10,} {row['quotes_per_s']:>10,}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Orchestration run times on a fresh chDB store: the row-count audit (first pass over a day
of minutes, then the every-minute incremental pass) and a backfill of a Binance daily dump.

    .venv/bin/python bench/bench_orchestration.py [--trades 1000000] [--feeds 3] [--dump-rows 200000]

Prints one JSON object (seconds, wall clock: the machine is shared), then a line of text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataflows.sink.batches import TRADES, ledger_table  # noqa: E402
from feedhouse.core.config import load_settings  # noqa: E402
from feedhouse.store.client import warehouse  # noqa: E402
from feedhouse.store.ledger import LedgerDelta, minute_counts  # noqa: E402
from feedhouse.store.migrations import init_schema  # noqa: E402
from feedhouse.verify.audit import run_audit  # noqa: E402
from feedhouse.verify.backfill import backfill_day  # noqa: E402

DAY_US = 1705276800 * 1_000_000  # 2024-01-15


def seed(settings, trades: int, feeds: int) -> None:
    """`trades` trades spread over one day and `feeds` feeds, each counted in the ledger."""
    rng = np.random.default_rng(7)
    per_feed = trades // feeds
    with warehouse(settings) as client:
        for f in range(feeds):
            ts = np.sort(rng.integers(DAY_US, DAY_US + 86_400_000_000, per_feed))
            ids = np.arange(per_feed) + f * per_feed
            feed = f"feed-{f}"
            table = pa.table({
                "venue": pa.array([f"venue{f}"] * per_feed), "symbol": pa.array(["BTC-USDT"] * per_feed),
                "native_symbol": pa.array(["BTCUSDT"] * per_feed),
                "trade_id": pa.array(ids.astype(str)), "price": pa.array(np.full(per_feed, 42000.0)),
                "amount": pa.array(np.full(per_feed, 0.01)), "side": pa.array(["buy"] * per_feed),
                "exchange_ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
                "received_ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
                "feed": pa.array([feed] * per_feed),
            })
            client.insert_arrow(TRADES, table)
            ledger = LedgerDelta()
            ledger.add_minutes(feed, minute_counts(ts), "parsed")
            ledger.add_minutes(feed, minute_counts(ts), "inserted")
            client.insert_arrow("ops.ingest_ledger", ledger_table(ledger))


def write_dump(folder: Path, rows: int) -> None:
    start_ms = DAY_US // 1000
    with (folder / "BTCUSDT-trades-2024-01-15.csv").open("w") as out:
        for i in range(rows):
            out.write(f"{i},42000.5,0.01,420.005,{start_ms + i * 400},{'True' if i % 2 else 'False'},True\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--feeds", type=int, default=3)
    parser.add_argument("--dump-rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=tmp)
        init_schema(settings)
        t0 = time.perf_counter()
        seed(settings, args.trades, args.feeds)
        seeded = time.perf_counter() - t0
        with warehouse(settings) as client:
            t0 = time.perf_counter()
            first = run_audit(client)
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = run_audit(client)
            again_s = time.perf_counter() - t0
        assert first.ok and not again.minutes
        archive = Path(tmp) / "archive"
        archive.mkdir()
        write_dump(archive, args.dump_rows)
        t0 = time.perf_counter()
        loaded = backfill_day(lambda: warehouse(settings), "binance", date(2024, 1, 15), archive)
        backfill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backfill_day(lambda: warehouse(settings), "binance", date(2024, 1, 15), archive)
        rerun_s = time.perf_counter() - t0
    result = {
        "bench": "orchestration",
        "trades": args.trades,
        "feeds": args.feeds,
        "seed_s": round(seeded, 2),
        "audit_first_pass_minutes": len(first.minutes),
        "audit_first_pass_s": round(first_s, 3),
        "audit_incremental_noop_s": round(again_s, 3),
        "backfill_rows": loaded.total("inserted"),
        "backfill_s": round(backfill_s, 2),
        "backfill_rows_per_s": round(loaded.total("inserted") / backfill_s),
        "backfill_rerun_s": round(rerun_s, 2),
    }
    print(json.dumps(result))
    print(
        f"audit: {result['audit_first_pass_minutes']} feed-minutes over {args.trades} trades in "
        f"{first_s:.2f}s, incremental no-op {again_s:.2f}s; backfill {result['backfill_rows']} rows "
        f"in {backfill_s:.1f}s ({result['backfill_rows_per_s']}/s), rerun {rerun_s:.1f}s"
    )


if __name__ == "__main__":
    main()

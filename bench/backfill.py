"""Backfill: a generated 1M-trade Binance day loaded by `feedhouse.verify.backfill.backfill_day`,
against the engine loading the same CSV itself.

Per repeat, alternating sides, each in its own process from a cold start (a fresh store
with the schema applied by another process, nothing open, nothing cached; the timer starts after the
imports and covers opening the store, reading, checking, deduplicating and inserting):
* `columnar`: `backfill_day(connect, 'binance', day, archive)` -> market.trades (ledger,
  tokens, stored-key check, contract check: everything a real backfill does);
* `native`: one `INSERT INTO bench.trades SELECT ... FROM file('<csv>', 'CSV', ...)` into a
  table created `AS market.trades` (same engine, order, partitions), mapping the columns
  the same way (ids as strings, side from is_buyer_maker, µs times).
The day is a plain `.csv` dump (chDB's file() cannot read zip: minizip is disabled in its
build), `bench.archive_gen.binance_day` with a fixed seed. Figures: rows/s of the backfill
(`backfill_rows_per_s`), backfill rows/s over native rows/s (`backfill_ratio_vs_native`,
goal >= 0.25), and for Tardis.dev files of two venues (`backfill_tardis_rows_per_s`).

    python -m bench --only backfill
    python -m bench.backfill prepare STORE; python -m bench.backfill side columnar|native STORE ARCHIVE
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.common import PYTHON, ROOT, Config, Figure, measured, module_command, set_aside
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema
from feedhouse.verify.backfill import backfill_day

DAY = date(2025, 11, 20)
GOAL_RATIO = ">= 0.25"
NATIVE_TABLE = "bench.trades"
NATIVE_SQL = (
    "INSERT INTO bench.trades (venue, symbol, native_symbol, trade_id, price, amount, side, "
    "exchange_ts, received_ts, feed) SELECT 'binance', 'BTC-USDT', 'BTCUSDT', toString(id), "
    "price, qty, if(maker, 'sell', 'buy'), fromUnixTimestamp64Micro(ts), "
    "fromUnixTimestamp64Micro(ts), 'native' FROM file({path:String}, 'CSV', "
    "'id UInt64, price Float64, qty Float64, quote_qty Float64, ts Int64, maker Bool, "
    "best Bool')"
)


def _settings(store: Path):

    return load_settings(home=str(store), recovery=False)


def prepare(store: Path) -> None:
    """A store with the schema applied and the native table created (not timed)."""

    set_aside(store)
    settings = _settings(store)
    init_schema(settings)
    with warehouse(settings) as client:
        client.command("CREATE DATABASE IF NOT EXISTS bench")
        client.command(f"CREATE TABLE {NATIVE_TABLE} AS market.trades")


def side(kind: str, store: Path, archive: Path, venue: str = "binance") -> dict:
    """One timed side in this (fresh) process; returns rows, seconds and the stored sums."""

    settings = _settings(store)
    started = time.perf_counter()
    if kind == "native":
        csv = next(archive.rglob("*.csv"))
        with warehouse(settings) as client:
            client.command(NATIVE_SQL, parameters={"path": str(csv)})
        table, feed = NATIVE_TABLE, "native"
    else:
        backfill_day(lambda: warehouse(settings), venue, DAY, archive)
        table, feed = "market.trades", f"backfill:{venue}"
    seconds = time.perf_counter() - started
    with warehouse(settings) as client:
        rows, notional = client.query(
            f"SELECT count(), sum(price * amount) FROM {table} WHERE feed = {{f:String}}",
            parameters={"f": feed}).result_rows[0]
    return {"rows": int(rows), "seconds": seconds, "notional": float(notional or 0.0)}


def _python(*args: str) -> str:
    out = subprocess.run([PYTHON, "-m", "bench.backfill", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout


def _run_side(kind: str, work: Path, archive: Path, venue: str = "binance") -> dict:
    """Prepare a store in one process (a chDB store cannot be copied: its tables are
    symlinks by absolute path), then time the side in a fresh one."""
    store = work / f"store-{kind}-{venue}"
    _python("prepare", str(store))
    out = _python("side", kind, str(store), str(archive), venue)
    set_aside(store)
    return json.loads(out.strip().splitlines()[-1])


def run(cfg: Config) -> list[Figure]:
    from bench.archive_gen import binance_day, tardis_day

    rows = cfg.backfill_rows
    work = cfg.workdir / "backfill"
    archive = work / f"binance-{rows}"
    if not archive.exists():
        binance_day(archive / "spot", DAY, rows, zipped=False)
    expected = rows
    tardis = work / f"tardis-{rows}"
    if not tardis.exists():
        tardis_day(tardis, "coinbase", "BTC-USD", DAY, rows // 2)
        tardis_day(tardis, "kraken", "XBT/USD", DAY, rows // 2, with_ids=False, seed=12)
    rates, native_rates, ratios, tardis_rates = [], [], [], []
    for r in range(cfg.backfill_repeats):
        order = ("native", "columnar") if r % 2 == 0 else ("columnar", "native")
        got = {kind: _run_side(kind, work, archive) for kind in order}
        for kind, res in got.items():
            if res["rows"] != expected:
                raise RuntimeError(f"{kind}: stored {res['rows']} of {expected} rows")
        if abs(got["native"]["notional"] - got["columnar"]["notional"]) > 1e-6 * got["native"]["notional"]:
            raise RuntimeError(f"sum(price*amount) differs: {got}")
        rate = expected / got["columnar"]["seconds"]
        native = expected / got["native"]["seconds"]
        rates.append(round(rate))
        native_rates.append(round(native))
        ratios.append(round(rate / native, 3))
        loaded = [_run_side("columnar", work, tardis, venue) for venue in ("coinbase_exchange", "kraken")]
        tardis_rates.append(round(sum(x["rows"] for x in loaded) / sum(x["seconds"] for x in loaded)))
    command = module_command("backfill", cfg)
    base = {"rows": expected, "day": DAY.isoformat(), "file": "Binance spot trades dump, plain CSV, "
            "no header, µs times (bench.archive_gen.binance_day, seed 7)",
            "store": "chdb (embedded), cold start per side", "clock": "wall"}
    return [
        measured("backfill_rows_per_s", "rows/s", command, rates, settings=base),
        measured("backfill_native_rows_per_s", "rows/s", command, native_rates,
                 settings={**base, "sql": NATIVE_SQL}),
        measured("backfill_ratio_vs_native", "x", command, ratios, goal=GOAL_RATIO, settings=base),
        measured("backfill_tardis_rows_per_s", "rows/s", command, tardis_rates,
                 settings={"rows": 2 * (rows // 2), "files": "coinbase BTC-USD (ids), kraken "
                           "XBT/USD (no ids: hashed, content-matched), Tardis.dev .csv.gz",
                           "store": "chdb (embedded), cold start per venue", "clock": "wall"}),
    ]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "prepare":
        prepare(Path(argv[1]))
        return 0
    if len(argv) >= 4 and argv[0] == "side":
        venue = argv[4] if len(argv) > 4 else "binance"
        print(json.dumps(side(argv[1], Path(argv[2]), Path(argv[3]), venue)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""What grows inside chDB's engine under the ingest's insert pattern, in one process.

Inserts at the demo's rates into a fresh chDB store (the project's schema, the sink's
dedup tokens, insert_arrow), with none of the rest of the pipeline, and samples every
`--every` seconds: RSS, chDB's 2 MiB-aligned (jemalloc) mappings, the engine's jemalloc
totals, its tracked memory, its system log tables' rows and its active/outdated parts.
Variants (one per run; compare runs side by side, alternating):

  --purge-every S     SYSTEM JEMALLOC PURGE every S seconds
  --drop-caches-every S  SYSTEM DROP MARK/UNCOMPRESSED/... CACHE every S seconds
  FEEDHOUSE_EMBEDDED_STORE__X=v  an embedded_store setting, in the environment
  MALLOC_CONF=...     in the environment before the run (chDB's jemalloc reads it)

    python -m bench.chdb_memory_probe --minutes 8 --out /tmp/p.jsonl
    python -m bench.chdb_memory_probe --report /tmp/p.jsonl --from-s 120
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa

from dataflows.footprint import jemalloc_figures, mapping_figures, process_figures
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import apply_migrations

LOGS_SQL = ("SELECT database || '.' || name, total_rows FROM system.tables "
            "WHERE database = 'system' AND name LIKE '%log%' AND total_rows > 0")
PARTS_SQL = "SELECT active, count() FROM system.parts GROUP BY active"
TRACKED_SQL = "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
METRICS_SQL = "SELECT metric, value FROM system.metrics WHERE value != 0"
VENUES = ("binance", "coinbase", "kraken", "bybit", "okx", "bitmex")


def trades(n: int, seq: int, venue: str) -> pa.Table:
    now = time.time()
    ts = pa.array([int(now * 1e6)] * n, pa.timestamp("us", tz="UTC"))
    return pa.table({
        "venue": [venue] * n, "symbol": ["BTC-USDT"] * n, "native_symbol": ["BTCUSDT"] * n,
        "trade_id": [f"{seq}-{i}" for i in range(n)], "price": [50000.0 + i for i in range(n)],
        "amount": [0.01] * n, "side": ["buy"] * n, "exchange_ts": ts, "received_ts": ts,
        "feed": [venue] * n})


def readings(n: int, seq: int) -> pa.Table:
    now = time.time()
    ts = pa.array([int(now * 1e6)] * n, pa.timestamp("us", tz="UTC"))
    return pa.table({
        "device_id": [f"dev-{i % 50}" for i in range(n)],
        "sensor": [("temperature", "humidity", "pressure", "co2")[i % 4] for i in range(n)],
        "seq": pa.array([seq * n + i for i in range(n)], pa.uint64()),
        "value": [float(i) for i in range(n)], "unit": ["C"] * n, "device_ts": ts,
        "received_ts": ts, "site": ["plant"] * n, "feed": ["plant"] * n})


MERGED = re.compile(r"dirty:\s+N/A\s+(\d+).*?small:\s+(\d+).*?large:\s+(\d+).*?"
                    r"tcache_bytes:\s+(\d+)", re.S)


def merged_arenas(client) -> dict:
    """Dirty pages, small/large allocated and the threads' caches from jemalloc's stats."""
    text = "".join(r[0] for r in client.query("SELECT stats FROM system.jemalloc_stats").result_rows)
    text = text[text.find("Merged arenas stats:"):]
    m = MERGED.search(text)
    if m is None:
        return {}
    dirty, small, large, tcache = (int(v) for v in m.groups())
    return {"dirty_mb": round(dirty * 4096 / 2**20, 1), "small_mb": round(small / 2**20, 1),
            "large_mb": round(large / 2**20, 1), "tcache_mb": round(tcache / 2**20, 1)}


def sample(client, t0: float) -> dict:
    data = {"t": round(time.time() - t0, 1), **process_figures(),
            "cpu_s": round(sum(os.times()[:2]), 2)}
    data["anon_by_mapping_mb"] = mapping_figures()
    data["jemalloc"] = jemalloc_figures(client)
    data["arenas"] = merged_arenas(client)
    data["tracked_mb"] = round(client.query(TRACKED_SQL).result_rows[0][0] / 2**20, 1)
    data["logs"] = dict(client.query(LOGS_SQL).result_rows)
    data["parts"] = {("active" if a else "outdated"): n
                     for a, n in client.query(PARTS_SQL).result_rows}
    data["metrics"] = dict(client.query(METRICS_SQL).result_rows)
    return data


def run(args) -> None:
    store = Path(args.store or tempfile.mkdtemp(prefix="chdbprobe-"))
    os.environ["FEEDHOUSE_WAREHOUSE_DSN"] = f"chdb://{store / 'clickhouse'}"
    os.environ["FEEDHOUSE_HOME"] = str(store)
    settings = load_settings()
    t0, seq = time.time(), 0
    next_sample = next_purge = next_drop = t0
    out = open(args.out, "w") if args.out else sys.stdout
    with warehouse(settings) as client:
        apply_migrations(client)
        while time.time() - t0 < args.minutes * 60:
            tick = time.time()
            seq += 1
            run_id = uuid.uuid4().hex[:8]
            for venue in VENUES:
                client.insert_arrow("market.trades", trades(args.rate // 6, seq, venue),
                                    settings={"insert_deduplication_token": f"{run_id}-{venue}-{seq}"})
            client.insert_arrow("iot.readings", readings(args.readings_per_s, seq),
                                settings={"insert_deduplication_token": f"{run_id}-r-{seq}"})
            if args.purge_every and tick >= next_purge:
                client.command("SYSTEM JEMALLOC PURGE")
                next_purge = tick + args.purge_every
            if args.drop_caches_every and tick >= next_drop:
                for cache in ("MARK", "UNCOMPRESSED", "COMPILED EXPRESSION", "QUERY CONDITION"):
                    client.command(f"SYSTEM DROP {cache} CACHE")
                next_drop = tick + args.drop_caches_every
            if tick >= next_sample:
                print(json.dumps(sample(client, t0)), file=out, flush=True)
                next_sample = tick + args.every
            time.sleep(max(0.0, 1.0 - (time.time() - tick)))
        print(json.dumps(sample(client, t0)), file=out, flush=True)


def slope(points: list[tuple[float, float]]) -> float:
    """Least squares, per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points) or 1.0
    return sum((t - mx) * (v - my) for t, v in points) / den * 3600


def report(path: str, from_s: float) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if r["t"] >= from_s]
    figures = {
        "rss_mb": lambda r: r["rss_mb"],
        "anon_mb": lambda r: r.get("rssanon_mb", 0),
        "aligned_2m_mb": lambda r: r["anon_by_mapping_mb"].get("aligned_2m", 0),
        "je_allocated_mb": lambda r: r["jemalloc"].get("allocated_mb", 0),
        "je_resident_mb": lambda r: r["jemalloc"].get("resident_mb", 0),
        "je_metadata_mb": lambda r: r["jemalloc"].get("metadata_mb", 0),
        "je_retained_mb": lambda r: r["jemalloc"].get("retained_mb", 0),
        "tracked_mb": lambda r: r["tracked_mb"],
        "small_mb": lambda r: r.get("arenas", {}).get("small_mb", 0),
        "large_mb": lambda r: r.get("arenas", {}).get("large_mb", 0),
        "tcache_mb": lambda r: r.get("arenas", {}).get("tcache_mb", 0),
        "dirty_mb": lambda r: r.get("arenas", {}).get("dirty_mb", 0),
        "threads": lambda r: r["threads"],
        "cpu_s": lambda r: r.get("cpu_s", 0),
    }
    first, last = rows[0], rows[-1]
    for name, get in figures.items():
        print(f"{name:18} {get(first):8.1f} -> {get(last):8.1f}  "
              f"slope {slope([(r['t'], get(r)) for r in rows]):+8.1f} MB/h")
    print("logs", first["logs"], "->", last["logs"])
    print("parts", first["parts"], "->", last["parts"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=8)
    p.add_argument("--rate", type=int, default=400, help="trades/s")
    p.add_argument("--readings-per-s", type=int, default=1000)
    p.add_argument("--every", type=float, default=15)
    p.add_argument("--purge-every", type=float, default=0)
    p.add_argument("--drop-caches-every", type=float, default=0)
    p.add_argument("--store")
    p.add_argument("--out")
    p.add_argument("--report")
    p.add_argument("--from-s", type=float, default=0)
    args = p.parse_args(argv)
    if args.report:
        report(args.report, args.from_s)
    else:
        run(args)


if __name__ == "__main__":
    main()

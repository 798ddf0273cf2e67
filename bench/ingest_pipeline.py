"""End-to-end ingest figures: replay server -> WebSocket -> Bytewax -> chDB.

    .venv/bin/python -m bench.ingest_pipeline --mode max  --seconds 20   # trades/s
    .venv/bin/python -m bench.ingest_pipeline --mode rate --rate 10000 --seconds 20  # latency

A synthetic Binance aggTrade session (one trade per frame, `--symbols` symbols, recorded
at 10,000 frames/s) is served by the replay server, looped (new ids and times per lap).
`max`: as fast as the pipeline reads; trades/s = rows committed (ClickHouse acked)
per second between the warm-up mark and the stop. `rate`: paced at `--rate` trades/s;
tick->row latency = insert acked - frame received, per row, after warm-up (p50/p99).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RECORDED_RATE = 10_000  # frames (= trades) per second in the synthetic recording


def write_capture(folder: Path, frames: int, symbols: int) -> str:
    name = "BINANCE.synthetic"
    t0 = 1_700_000_000.0
    syms = [f"S{i:02d}USDT" for i in range(symbols)]
    lines = [f"wss://stream.binance.com:9443/stream?streams=x <-> {t0}"]
    for i in range(frames):
        ts = t0 + i / RECORDED_RATE
        sym = syms[i % symbols]
        ms = int(ts * 1000)
        data = (f'{{"stream":"{sym.lower()}@aggTrade","data":{{"e":"aggTrade","E":{ms},'
                f'"s":"{sym}","a":{i // symbols + 1},"p":"{100 + (i % 97) / 100:.2f}",'
                f'"q":"0.010","f":{i + 1},"l":{i + 1},"T":{ms},"m":{"true" if i % 2 else "false"},'
                f'"M":true}}}}')
        lines.append(f"{ts:.6f}: {data}")
    (folder / name).write_text("\n".join(lines) + "\n")
    return name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("max", "rate"), default="max")
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--symbols", type=int, default=20)
    args = ap.parse_args()

    from dataflows.runner import run
    from dataflows.sink.stats import LATENCY, STATS
    from feedhouse.app.session_server.server import SessionServer
    from feedhouse.core.config import load_settings
    from feedhouse.store.client import warehouse

    work = Path(tempfile.mkdtemp(prefix="feedhouse-bench-"))
    caps = work / "captures"
    caps.mkdir()
    name = write_capture(caps, 20_000, args.symbols)
    speed = None if args.mode == "max" else args.rate / RECORDED_RATE
    server = SessionServer(caps, speed=speed, loop=True)
    server.start()
    symbols = [f"S{i:02d}-USDT" for i in range(args.symbols)]
    settings = load_settings(
        home=str(work / "fh"), recovery=True,
        feeds=[{"name": "bn", "venue": "binance", "url": server.url(name), "symbols": symbols}],
    )
    stop = threading.Event()
    marks: dict[str, float] = {}

    def inserted() -> int:
        return sum(t["inserted"] for t in STATS.totals.values())

    def control() -> None:
        while inserted() == 0 and not stop.is_set():
            time.sleep(0.05)
        time.sleep(args.warmup)
        LATENCY.reset()
        LATENCY.cap = 1_000_000  # off by default (dataflows/sink.py)
        marks["t0"], marks["n0"] = time.monotonic(), inserted()
        time.sleep(args.seconds)
        marks["t1"], marks["n1"] = time.monotonic(), inserted()
        server.stop()
        time.sleep(2)
        stop.set()

    threading.Thread(target=control, daemon=True).start()
    run(settings, stop=stop, handle_signals=False)
    lat = LATENCY.values() / 1000.0  # ms
    with warehouse(settings) as client:
        stored, distinct = client.query(
            "SELECT count(), uniqExact(venue, symbol, trade_id) FROM market.trades"
        ).result_rows[0]
    sent = server.stats()[name]
    out = {
        "bench": "ingest_pipeline", "mode": args.mode,
        "target_rate": args.rate if args.mode == "rate" else None,
        "trades_per_s": round((marks["n1"] - marks["n0"]) / (marks["t1"] - marks["t0"])),
        "unique_sent": sent["unique_trades_sent"], "stored": stored, "distinct": distinct,
        "latency_rows": int(lat.size),
        "tick_to_row_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "tick_to_row_ms_p99": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "batch_ms": settings.sink.batch_ms, "batch_rows": settings.sink.batch_rows,
        "store": str(work),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

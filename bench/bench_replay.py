"""Frames/s the replay server and the exchange source sustain at --speed max on loopback.

    .venv/bin/python bench/bench_replay.py [--seconds 3] [--inprocess]

The server runs as `feedhouse session-server --speed max --loop` in its own process (as in
the demo and the drills); this process runs the exchange source partition (websockets
client thread + bounded queue) and drains its micro-batches like Bytewax would. Looping
means laps >= 1 go through the venue shifter (decode, shift, encode) on the server.
`--inprocess` runs the server in this process instead (both share one GIL).
Prints one JSON object per capture, then a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataflows.sources.exchange import FeedPartition  # noqa: E402
from feedhouse.app.session_server.server import SessionServer  # noqa: E402
from feedhouse.app.sessions import SESSIONS_DIR  # noqa: E402
from feedhouse.core.settings import FeedSettings  # noqa: E402

CAPTURES = SESSIONS_DIR
FEEDHOUSE = str(Path(sys.executable).parent / "feedhouse")
CASES = [  # capture, venue, symbols
    ("COINBASE.ws.28.0", "coinbase", ["SKL-USD"]),
    ("BINANCE_FUTURES.ws.1.0", "binance_futures", ["SUSHI-USDT"]),
    ("BYBIT.ws.25.0", "bybit", ["BCH-USDT"]),
    ("OKX.ws.1.0", "okx", ["BTC-USDT"]),
]


def start_server(inprocess: bool):
    if inprocess:
        server = SessionServer(CAPTURES, speed="max", loop=True)
        return server.start(), server.stop
    proc = subprocess.Popen(
        [FEEDHOUSE, "session-server", "--captures", str(CAPTURES), "--port", "0",
         "--speed", "max", "--loop"],
        stdout=subprocess.PIPE, text=True,
    )
    for line in proc.stdout:
        if line.startswith("port "):
            port = int(line.split()[1])
            break

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=10)

    return port, stop


def measure(port: int, capture: str, venue: str, symbols: list[str], seconds: float) -> dict:
    feed = FeedSettings(name="bench", venue=venue, url=f"ws://127.0.0.1:{port}/{capture}",
                        symbols=symbols, stale_s=60)
    part = FeedPartition(feed, 0)
    frames = size = 0
    try:
        while not part.next_batch():  # connected and flowing
            time.sleep(0.001)
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            batches = part.next_batch()
            for batch in batches:
                frames += len(batch.messages)
                size += sum(len(m) for _, m in batch.messages)
            if not batches:
                time.sleep(0.001)
    finally:
        part.close()
    return {
        "capture": capture, "venue": venue, "seconds": round(elapsed, 2), "frames": frames,
        "frames_per_s": round(frames / elapsed), "mb_per_s": round(size / elapsed / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--inprocess", action="store_true")
    args = parser.parse_args()
    port, stop = start_server(args.inprocess)
    rows = []
    try:
        for capture, venue, symbols in CASES:
            row = measure(port, capture, venue, symbols, args.seconds)
            row["server"] = "in-process" if args.inprocess else "subprocess"
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        stop()
    print(f"\n{'capture':<24}{'server':<12}{'frames/s':>10}{'MB/s':>7}")
    for row in rows:
        print(f"{row['capture']:<24}{row['server']:<12}{row['frames_per_s']:>10}"
              f"{row['mb_per_s']:>7}")


if __name__ == "__main__":
    main()

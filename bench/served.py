"""The served corpus of the end-to-end benchmarks: real sessions, looped, over WebSocket.

`build(folder, total_trades)` writes one capture file per venue holding only the
recorded session's trade-bearing frames, repeated lap after lap with the replay server's
own shifter (new trade ids, times and prices per lap) until the venues together hold
`total_trades` unique trades. The laps are written out ahead (and kept in the bench work
folder for later runs), so the server sends them as recorded instead of re-encoding
every frame while the pipeline is being timed.

`Server` runs `feedhouse session-server --speed S` on those files in its own process
(its own core and GIL, as the exchange would be).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import FEEDHOUSE, capture_path

# Every venue's trades are stamped on one clock from this UTC midnight, in their recorded
# spacing, as live feeds are: the recordings are of different days, and rows of several
# days split each insert into a part per day (market.trades is partitioned by day), which
# tripled the inserts' cost at paced rates (measured: 1-3 days per insert). An hour after
# midnight, so trades stamped before their frame arrived stay in the day; the largest
# corpus spans ~19 h of event time.
EVENTS_FROM = 1_735_693_200.0  # 2025-01-01T01:00:00Z

# venue -> recorded session: the venues with a fast parse path and a lap shifter
E2E = {
    "binance_futures": "BINANCE_FUTURES.ws.1.0",
    "okx": "OKX.ws.1.0",
    "coinbase": "COINBASE.ws.28.0",
}


@dataclass
class Served:
    venue: str
    file: str  # capture file name = URL path on the replay server
    frames: int
    trades: int  # unique trades in the file
    symbols: list[str]
    seconds: float  # recorded duration (for pacing)


def _write(capture: str, out: Path, min_trades: int) -> Served:
    from feedhouse.app.session_server.stream import RecordedStream

    stream = RecordedStream.load(capture_path(capture))
    venue = stream.venue
    assert venue is not None
    header = capture_header(capture)
    keys: set[tuple[str, str]] = set()
    symbols: set[str] = set()
    # from lap 1 on every trade frame is shifted, so it can be stamped on the common clock
    g = first = len(stream)
    frames = 0
    last = EVENTS_FROM
    with out.open("w", encoding="utf-8") as fh:
        fh.write("\n".join(header) + "\n")
        while len(keys) < min_trades:
            i = g % len(stream)
            if stream.keys[i]:
                last = EVENTS_FROM + stream.time_of(g) - stream.time_of(first)
                frame = stream.frame(g, at=last)
                for t in venue.parse(frame, 1).trades:
                    keys.add((t.symbol, t.trade_id))
                    symbols.add(t.symbol)
                fh.write(f"{last:.6f}: {frame}\n")
                frames += 1
            g += 1
    return Served(venue.name, out.name, frames, len(keys), sorted(symbols), last - EVENTS_FROM)


def capture_header(capture: str) -> list[str]:
    """The recorded session's connect line and first subscribe (the server waits for ours)."""
    from dataflows.sources.capture import header_lines

    return header_lines(capture_path(capture))


def cached(folder: Path, size_key: str, size: int, kind: type, make: Callable[[], list]) -> list:
    """The corpus files in `folder`, reused when its index.json says they were built for
    this size; else `make()` writes them (anything else in the folder is removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.json"
    if index.exists():
        data = json.loads(index.read_text())
        if data.get(size_key) == size:
            return [kind(**s) for s in data["served"]]
    served = make()
    for stale in folder.iterdir():
        if stale.name not in {s.file for s in served} | {"index.json"}:
            stale.unlink()
    index.write_text(json.dumps({size_key: size, "served": [s.__dict__ for s in served]}))
    return served


def build(folder: Path, total_trades: int) -> list[Served]:
    """The corpus files (reused when already built for this size)."""
    per = total_trades // len(E2E) + 1
    return cached(folder, "trades_on_one_clock", total_trades, Served,
                  lambda: [_write(cap, folder / cap, per) for cap in E2E.values()])


def feeds(served: list[Served], port: int) -> list[dict]:
    return [{"name": s.venue, "venue": s.venue, "url": f"ws://127.0.0.1:{port}/{s.file}",
             "symbols": s.symbols, "channels": ["trades"]} for s in served]


class Server:
    """`feedhouse session-server` in its own process; stopped by its PID."""

    def __init__(self, folder: Path, speed: str = "max", stats_file: Path | None = None):
        self.args = [FEEDHOUSE, "session-server", "--captures", str(folder), "--speed", speed]
        self.log = folder.parent / "replay-server.log"
        if stats_file is not None:
            self.args += ["--stats-file", str(stats_file)]
        self.stats_file = stats_file
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> Server:
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log,
                                         text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # it prints nothing after the port line
            if line.startswith("port "):
                self.port = int(line.split()[1])
                break
        if not self.port:
            self.proc.wait(10)
            raise RuntimeError(f"replay server did not start: see {self.log}")
        return self

    def stats(self) -> dict:
        if self.stats_file is None or not self.stats_file.exists():
            return {}
        return json.loads(self.stats_file.read_text()).get("paths", {})

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

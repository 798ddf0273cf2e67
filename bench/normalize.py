"""Normalize: trade frames -> trade columns (`TradeColumns`) on the hot path, and the same
frames through cryptofeed's feed handlers.

Corpus per venue: the recorded session's trade-bearing frames, looped with shifted ids
(bench.common.corpus). Ours: `Venue.parse_many` (the batch parse the dataflow calls) over
micro-batches of 500 frames. Theirs: bench/cryptofeed_side.py in its own process (same
frames, each awaited through the feed's `message_handler` into a TRADES callback). Both
sides count trades per CPU second of their own process (the machine is shared); the
repeats of the two sides alternate so load drift hits both alike. Ratio = ours / theirs
per repeat pair, median over pairs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.common import (
    NORMALIZE_CAPTURES,
    PYTHON,
    ROOT,
    Config,
    Figure,
    corpus,
    cpu_timed,
    measured,
    module_command,
    shell,
    unavailable,
)
from bench.cryptofeed_side import FEEDS

BATCH = 500  # frames per micro-batch (the exchange source's batches are of this order)


def ours(venue_name: str, messages, seconds: float) -> float:
    from dataflows.venues import get_venue

    parse_many = get_venue(venue_name).parse_many
    chunks = [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]

    def one_pass() -> int:
        return sum(len(parse_many(chunk).trades) for chunk in chunks)

    return cpu_timed(one_pass, seconds)


def cryptofeed_python() -> str:
    """The interpreter with cryptofeed: BENCH_CRYPTOFEED_PYTHON (a separate venv), else ours."""
    return os.environ.get("BENCH_CRYPTOFEED_PYTHON", PYTHON)


class Theirs:
    """bench/cryptofeed_side.py --serve: set up once, one timed repeat per request."""

    def __init__(self, venue_name: str, frames_file: Path, seconds: float) -> None:
        args = [cryptofeed_python(), "-m", "bench.cryptofeed_side", "--venue", venue_name,
                "--frames", str(frames_file), "--seconds", str(seconds), "--serve"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.version = self._read()["cryptofeed"]

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            tail = (err.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"cryptofeed side failed: {tail[:200]}")
        return json.loads(line)

    def repeat(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._read()["trades_per_s"][0]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(cfg: Config) -> list[Figure]:
    from dataflows.venues import get_venue

    figures: list[Figure] = []
    cmd = module_command("normalize", cfg)
    work = cfg.workdir / "normalize"
    work.mkdir(parents=True, exist_ok=True)
    per_venue: list[tuple[int, list[float]]] = []  # (trades in corpus, rates per repeat)
    for venue_name, capture in NORMALIZE_CAPTURES.items():
        messages = corpus(capture, cfg.normalize_trades, trades_only=True)
        venue = get_venue(venue_name)
        n_trades = len(venue.parse_many(messages).trades)  # warm-up, and the trade count
        settings = {"capture": capture, "frames": len(messages), "trades": n_trades,
                    "batch_frames": BATCH, "cpu_s_per_repeat": cfg.normalize_s,
                    "path": "Venue.parse_many"}
        compare = venue_name in FEEDS
        frames_file = work / f"{venue_name}.json"
        if compare:
            frames_file.write_text(json.dumps(
                [(ts, f if isinstance(f, str) else f.decode()) for ts, f in messages]))
        mine: list[float] = []
        other: list[float] = []
        why = ""
        version = ""
        side = None
        if compare:
            try:
                side = Theirs(venue_name, frames_file, cfg.normalize_s)
                version = side.version
            except (RuntimeError, OSError, ValueError) as exc:
                why = str(exc)
        # venues without a cryptofeed comparison: fewer, shorter repeats (time budget)
        repeats, seconds = (cfg.repeats, cfg.normalize_s) if compare else (
            max(2, cfg.repeats // 2), cfg.normalize_s / 2)
        settings["cpu_s_per_repeat"] = seconds
        try:
            for _ in range(repeats):
                mine.append(ours(venue_name, messages, seconds))
                if side is not None and not why:
                    try:
                        other.append(side.repeat())
                    except (RuntimeError, OSError, ValueError) as exc:
                        why = str(exc)
        finally:
            if side is not None:
                side.close()
        per_venue.append((n_trades, mine))
        figures.append(measured(f"normalize_trades_per_s.{venue_name}", "trades/s", cmd,
                                [round(r) for r in mine], settings=settings))
        if not compare:
            continue
        ratio_key = f"normalize_ratio_vs_cryptofeed.{venue_name}"
        their_cmd = shell(["python", "-m", "bench.cryptofeed_side", "--venue", venue_name,
                           "--frames", str(frames_file)])
        if why:
            figures.append(unavailable(ratio_key, "x", cmd, why, goal=">= 4", settings=settings))
            continue
        figures.append(measured(f"cryptofeed_trades_per_s.{venue_name}", "trades/s", their_cmd,
                                [round(r) for r in other],
                                settings={**settings, "cryptofeed": version}))
        ratios = [round(a / b, 2) for a, b in zip(mine, other, strict=False)]
        figures.append(measured(ratio_key, "x", cmd, ratios, goal=">= 4",
                                settings={**settings, "cryptofeed": version},
                                note="ours / cryptofeed, per alternating repeat pair"))
    # overall, per repeat: every venue corpus once, total trades / total CPU time
    n = min(len(rates) for _, rates in per_venue)
    overall = [sum(t for t, _ in per_venue) / sum(t / rates[r] for t, rates in per_venue)
               for r in range(n)]
    figures.append(measured("normalize_trades_per_s.overall", "trades/s", cmd,
                            [round(x) for x in overall],
                            note="all venue corpora together: total trades / total CPU time"))
    return figures

"""Profile the ingest hot path: py-spy on `feedhouse run` during an e2e run, and
pyinstrument-free, per-stage CPU costs of the in-process pieces.

    python -m bench.profile [--trades 300000] [--seconds 8] [--top 25]
    python -m bench.profile --books 1000000   # the books_e2e corpus, the whole run sampled

py-spy samples every thread of the ingest process (Bytewax's worker, the WebSocket client
threads) from outside, so it does not slow the code it measures. Prints the functions
with the most samples (self and total, as % of all samples) and writes the collapsed
stacks to <workdir>/profile/ingest.txt (flamegraph.pl or speedscope read them).

`--books LEVELS`: the books_e2e corpus (channels [books]); py-spy samples from the ingest
process's start to its end (book rows are first committed late in a max-speed run), the
book part of the parse step split by stage (BOOK_STAGES) and start-up apart; µs/level =
a stage's share x the ingest process's CPU (/proc) over the whole run / the levels.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

from bench.common import Config


def py_spy() -> str | None:
    from bench.common import PYTHON

    candidate = Path(PYTHON).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


# Leaf frames of a thread that waits (py-spy's idle detection misses some in containers):
# left out, so the percentages are shares of CPU work.
IDLE = ("EpollSelector.select", "Condition.wait", "Event.wait", "sleep", "_PollLikeSelector.select",
        "Thread.join", "select (selectors")


# Stages of the exchange path, by the first matching frame of a sample's stack (thread
# names first): (stage, substrings of a frame). Order matters: the innermost known
# stage a stack is in wins, so list callees before their callers.
STAGES = (
    ("parse (venues)", ("parse_batch (",)),
    ("dedup", ("DedupLogic.on_batch", "DedupLogic.on_notify", "dedup_parsed")),
    ("dedup snapshot", ("DedupLogic.snapshot",)),
    ("sink: Arrow + tokens", ("FeedSinkPartition.write_batch", "FeedSinkPartition.flush_data")),
    ("sink: epoch checkpoint", ("FeedSinkPartition.snapshot", "_SinkGroup.checkpoint")),
    ("take (source -> dataflow)", ("FeedPartition.next_batch", "_StoppablePart.next_batch")),
)
THREAD_STAGES = (("feed-", "source: WebSocket client"), ("feedhouse-committer", "insert (committer)"))
# --books: the book work of the parse step by stage (innermost first), and start-up
BOOK_STAGES = (
    ("start-up (imports, schema, buffer)", ("_find_and_load", "apply_migrations", "init_schema",
                                            "LocalBuffer.__init__", "tune_gc")),
    ("books: dedup keys, ledger minutes", ("frame_keys", "level_minutes")),
    ("books: state + checksum", ("books/state.py", "books/checksum.py")),
    ("books: BookColumns (levels -> numpy)", ("BookColumns.of", "BookColumns._of")),
    ("books: parsers (orjson, BookFrame)", ("books/parsers.py",)),
    ("books: BookFeed (other)", ("BookFeed.apply",)),
    ("sink: Arrow + tokens", ("to_arrow",)),
)


def stage_of(thread: str, frames: list[str], books: bool = False) -> str:
    """The stage a sample belongs to (see STAGES; `books`: BOOK_STAGES first)."""
    if books:
        for stage, marks in BOOK_STAGES:
            if any(m in f for f in frames for m in marks):
                return stage
    for prefix, stage in THREAD_STAGES:
        if prefix in thread:
            return stage
    if "MainThread" not in thread:
        return "other threads (status, footprint, metrics)"
    for stage, marks in STAGES:
        if any(m in f for f in frames for m in marks):
            return stage
    return "bytewax (per item, epochs, recovery writes)"


def stages(raw: Path, books: bool = False) -> dict[str, float]:
    """{stage: share of busy samples}, waiting threads left out."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames or frames[-1].startswith(IDLE):
            continue
        thread = frames[0] if frames[0].startswith("thread ") else ""
        counts[stage_of(thread, frames[1:], books)] += int(count)
    total = sum(counts.values()) or 1
    return {k: n / total for k, n in counts.most_common()}


def summarize(raw: Path, top: int = 25) -> tuple[int, list[tuple[str, float, float]]]:
    """(busy samples, [(function, self %, total %)]) from py-spy's raw (collapsed) output,
    waiting threads left out."""
    self_n: Counter[str] = Counter()
    total_n: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(IDLE):
            continue
        samples += n
        self_n[frames[-1]] += n
        for frame in set(frames):
            total_n[frame] += n
    rows = [(f, 100 * n / samples, 100 * total_n[f] / samples)
            for f, n in self_n.most_common(top)]
    return samples, rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=300_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--books", type=int, metavar="LEVELS", help="profile the books_e2e corpus")
    args = ap.parse_args()
    if args.books:
        return profile_books(args.books, args.top)
    from bench import e2e

    spy = py_spy()
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install -e '.[bench]')")
    cfg = Config(e2e_trades=args.trades)
    served = e2e.build(e2e.corpus_folder(cfg), cfg.e2e_trades)
    out_dir = cfg.workdir / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "ingest.txt"
    started: list[subprocess.Popen] = []

    def on_rows(pid: int) -> None:
        started.append(subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(int(args.seconds)),
             "--rate", "200", "--format", "raw", "--threads", "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    result = e2e.one_run(cfg, served, cfg.workdir / "profile-run", timeout_s=600,
                         on_rows=on_rows)
    for proc in started:
        proc.wait(60)
    samples, rows = summarize(raw, args.top)
    print(f"e2e under py-spy: {result['trades_per_s']:,.0f} trades/s, "
          f"{result['cpu_us_per_trade']:.1f} µs CPU/trade; {samples} busy samples -> {raw}")
    print(f"{'share %':>8} {'µs/trade':>9}  stage (µs/trade = share x the run's CPU per trade; "
          "chDB's own threads are not sampled)")
    for stage, share in stages(raw).items():
        print(f"{100 * share:8.1f} {share * result['cpu_us_per_trade']:9.2f}  {stage}")
    print(f"{'self %':>7} {'total %':>8}  function")
    for frame, self_pct, total_pct in rows:
        print(f"{self_pct:7.1f} {total_pct:8.1f}  {frame}")
    return 0


def profile_books(levels: int, top: int) -> int:
    from bench import books_e2e, e2e

    spy = py_spy()
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install -e '.[bench]')")
    cfg = Config(book_levels=levels)
    folder = cfg.workdir / f"books-{levels}" / "captures"
    served = books_e2e.build(folder, levels)
    raw = cfg.workdir / "profile" / "books.txt"
    raw.parent.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []
    used: list[float] = []  # the ingest process's CPU seconds, last seen

    def on_start(pid: int) -> None:
        started.append(subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
             "--threads", "--nonblocking", "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def follow() -> None:
            while True:
                try:
                    used.append(e2e.cpu_s(pid))
                except (OSError, ValueError):
                    return
                threading.Event().wait(0.2)

        threading.Thread(target=follow, daemon=True).start()

    result = e2e.one_run(cfg, served, cfg.workdir / "profile-books", timeout_s=600,
                         folder=folder, feed_list=books_e2e.feeds,
                         count=books_e2e.stored_levels, on_start=on_start)
    for proc in started:
        proc.wait(60)
    n = result["expected"]
    cpu_us = max(used) / n * 1e6
    samples, rows = summarize(raw, top)
    print(f"books e2e under py-spy: {result['trades_per_s']:,.0f} levels/s, "
          f"{result['cpu_us_per_trade']:.1f} µs CPU/level (window); whole run "
          f"{max(used):.2f} s CPU = {cpu_us:.2f} µs/level; {samples} busy samples -> {raw}")
    print(f"{'share %':>8} {'µs/level':>9}  stage (µs/level = share x the whole run's CPU per level)")
    for stage, share in stages(raw, books=True).items():
        print(f"{100 * share:8.1f} {share * cpu_us:9.2f}  {stage}")
    print(f"{'self %':>7} {'total %':>8}  function")
    for frame, self_pct, total_pct in rows:
        print(f"{self_pct:7.1f} {total_pct:8.1f}  {frame}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench-profile"
    raise SystemExit(main())

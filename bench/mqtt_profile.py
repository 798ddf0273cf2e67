"""Where the time goes in `feedhouse drill mqtt`: CPU seconds per process, and inside the
ingest a py-spy profile by thread and by function.

    python -m bench.mqtt_profile [--rate 50000] [--seconds 20] [--readings-per-message 1]
                                 [--spy-seconds 10] [--top 25]

The drill runs as a subprocess; a sampler reads /proc every 0.2 s for it and its
descendants and keeps each process's last utime+stime, grouped by role: `load` (the drill
process itself: the load generator's publisher threads run in it), `mosquitto`, `ingest`
(`feedhouse run`) and `other` (short `feedhouse sql` counts). py-spy (`--spy-seconds`,
0 = off) records the ingest from outside, `--spy-delay` s after it appears, at 100 Hz;
the ingest's threads' CPU seconds come from /proc/<pid>/task (Python threads named by
py-spy's tid -> name, native chDB/DuckDB threads by their OS names).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import FEEDHOUSE
from bench.profile import IDLE, py_spy, summarize

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int, task: int | None = None) -> tuple[int, float] | None:
    """(ppid, cpu seconds) of a live process, or of one of its threads (`task`)."""
    path = Path(f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat")
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "load"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    if any(part.endswith(b"mosquitto") for part in cmd):
        return "mosquitto"
    return "ingest" if b"run" in cmd else "other"


class CpuSampler(threading.Thread):
    """Last seen CPU seconds of `root` and every descendant, by pid."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.cpu: dict[int, tuple[str, float]] = {}
        self.ingest_pids: list[int] = []
        self.threads: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, tid) -> name, cpu
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            stats = {pid: s for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                     if (s := _stat(pid)) is not None}
            family = {self.root}
            for _ in range(4):  # children, grandchildren, ...
                family |= {pid for pid, (ppid, _) in stats.items() if ppid in family}
            for pid in family & stats.keys():
                role = self.cpu[pid][0] if pid in self.cpu else _role(pid, self.root)
                if role == "ingest" and pid not in self.ingest_pids:
                    self.ingest_pids.append(pid)
                self.cpu[pid] = (role, stats[pid][1])
            for pid in self.ingest_pids:
                self._sample_threads(pid)

    def _sample_threads(self, pid: int) -> None:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return
        for tid in tids:
            try:
                comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            if (s := _stat(pid, tid)) is not None:
                self.threads[(pid, tid)] = (comm, s[1])

    def ingest_threads(self, names: dict[int, str]) -> dict[str, float]:
        """CPU seconds of the ingest's threads: Python threads by their py-spy name
        (`names`: tid -> name), native ones (chDB, DuckDB) by their OS name."""
        totals: Counter[str] = Counter()
        for (_, tid), (comm, seconds) in self.threads.items():
            totals[names.get(tid, f"native:{comm}")] += seconds
        return {k: round(v, 2) for k, v in totals.most_common() if v >= 0.05}

    def by_role(self) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for role, seconds in self.cpu.values():
            totals[role] += seconds
        return {role: round(s, 2) for role, s in sorted(totals.items())}


def thread_names(raw: Path) -> dict[int, str]:
    """tid -> Python thread name, from py-spy's `thread (tid): name` frames."""
    names = {}
    for line in raw.read_text().splitlines():
        for frame in line.split(";"):
            if frame.startswith("thread ("):
                tid, _, name = frame[len("thread ("):].partition("): ")
                names[int(tid, 0)] = name.rsplit(" ", 1)[0] if name.endswith(")") else name
    return names


def by_thread(raw: Path) -> dict[str, int]:
    """Busy samples per thread name from py-spy's raw output (waiting leaves left out)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        names = [f for f in frames if f.startswith("thread ")]
        work = [f for f in frames if not f.startswith(("process ", "thread "))]
        if names and work and not work[-1].startswith(IDLE):
            counts[names[0]] += int(n)
    return dict(counts.most_common())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=50_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--readings-per-message", type=int, default=1)
    ap.add_argument("--spy-seconds", type=int, default=10)
    ap.add_argument("--spy-delay", type=float, default=8.0,
                    help="seconds after the ingest starts (past its start-up)")
    ap.add_argument("--gil", action="store_true", help="py-spy --gil: only GIL holders")
    ap.add_argument("--idle", action="store_true",
                    help="py-spy --idle: waiting threads too (raw stacks; the summary "
                    "still leaves known waits out)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", type=Path, default=None, help="py-spy raw stacks (kept)")
    ap.add_argument("drill_args", nargs="*", help="more `drill mqtt` options, after --")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feedhouse-mqtt-profile-"))
    cmd = [FEEDHOUSE, "drill", "mqtt", "--rate", str(args.rate), "--seconds",
           str(args.seconds), "--duplicates", "0", "--work-dir", str(work / "drill"),
           *args.drill_args]
    if args.readings_per_message != 1:
        cmd += ["--readings-per-message", str(args.readings_per_message)]
    drill = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    sampler = CpuSampler(drill.pid)
    sampler.start()
    raw = args.out or work / "ingest.txt"
    spy_proc = None
    spy = py_spy() if args.spy_seconds else None
    while spy and spy_proc is None and drill.poll() is None:
        time.sleep(0.2)
        if sampler.ingest_pids:
            time.sleep(args.spy_delay)
            spy_proc = subprocess.Popen(
                [spy, "record", "--pid", str(sampler.ingest_pids[0]), "--duration",
                 str(args.spy_seconds), "--rate", "100", "--format", "raw", "--threads",
                 *(["--gil"] if args.gil else []), *(["--idle"] if args.idle else []),
                 "-o", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out, _ = drill.communicate()
    sampler.done.set()
    sampler.join()
    verdict = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    keys = ("sent", "sent_readings", "unique_sent", "stored", "lost", "duplicates_stored",
            "readings_per_s", "drained", "ok")
    print(json.dumps({k: verdict.get(k) for k in keys}))
    print("CPU seconds by process over the whole drill:", json.dumps(sampler.by_role()))
    if spy_proc is not None:
        spy_proc.wait(60)
        samples, rows = summarize(raw, args.top)
        print(f"ingest under py-spy ({samples} busy samples at 100 Hz, {raw}):")
        print("  busy samples by thread:", json.dumps(by_thread(raw)))
        print("  ingest CPU seconds by thread:",
              json.dumps(sampler.ingest_threads(thread_names(raw))))
        print(f"{'self %':>7} {'total %':>8}  function")
        for frame, self_pct, total_pct in rows:
            print(f"{self_pct:7.1f} {total_pct:8.1f}  {frame}")
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

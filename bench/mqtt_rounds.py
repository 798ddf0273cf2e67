"""Where the MQTT ingest's CPU goes at one offered rate, by thread and per round, with
checkouts alternating (issue 17: a cost per second, not per message).

    python -m bench.mqtt_rounds [--code /work/wt/base27,.] [--rounds 2] [--rate 10000]
                                [--warm-s 5] [--step-s 15] [--idle-s 10] [--flush-ms 50]

Per session (fresh broker, store and `feedhouse run` from that checkout): `idle_s` with
no traffic (the fixed cost per second), a warm-up step, then the measured step. CPU per
thread from /proc/<pid>/task, Python threads named by `py-spy dump` (paho's network
threads `paho-mqtt-client-*`, the committer, the main thread = Bytewax's worker), native
threads by their OS name (chDB's pools). After the ingest stops: inserts per table over
the session (the highest block number of its parts: one per insert), the measured step's
readings inserts (distinct inserted_ts) and latency. Load average printed with each row.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.mqtt_ingest import Session, group, thread_names, threads_cpu_s
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse


def by_thread(pid: int, names: dict[int, str]) -> dict[str, float]:
    return threads_cpu_s(pid, {tid: group(n) for tid, n in names.items()})


def delta_per(after: dict, before: dict, divisor: float, scale: float) -> dict:
    return {k: round((v - before.get(k, 0.0)) * scale / divisor, 2)
            for k, v in sorted(after.items()) if v - before.get(k, 0.0) > 0}


def session(code: Path | None, work: Path, args) -> dict:
    extra = {"flush_ms": args.flush_ms} if args.flush_ms else None
    s = Session(work, ingest_code=code, mqtt_extra=extra)
    try:
        pid = s.ingest.proc.pid
        time.sleep(3)  # start-up imports and schema out of the idle figure
        names = thread_names(pid)
        t0 = by_thread(pid, names)
        time.sleep(args.idle_s)
        idle = delta_per(by_thread(pid, names), t0, args.idle_s, 1e3)  # ms CPU per second
        s.step(args.rate, args.warm_s)
        names = thread_names(pid) or names
        t0 = by_thread(pid, names)
        load0 = os.getloadavg()[0]
        step = s.step(args.rate, args.step_s)
        load1 = os.getloadavg()[0]
        threads = delta_per(by_thread(pid, names), t0, step["messages"] or 1, 1e6)
        counts = s.finish()
        with warehouse(load_settings(s.config)) as client:
            inserts = dict(client.query(
                "SELECT database || '.' || table, max(max_block_number) FROM system.parts "
                "WHERE database IN ('iot', 'ops') GROUP BY 1 ORDER BY 1").result_rows)
    finally:
        s.close()
    return {"code": str(code or "."), "flush_ms": args.flush_ms or "default", "load_avg": [round(load0, 1), round(load1, 1)],
            "idle_ms_cpu_per_s": idle, "ingest_us_per_msg": step["cpu_us_per_message"]["ingest"],
            "threads_us_per_msg": threads, "messages": step["messages"],
            "published_per_s": step["published_messages_per_s"], "bounded": step["bounded"],
            "readings_inserts_in_step": step["inserts"], "latency_ms": step["latency_ms"],
            "session_inserts_by_table": inserts, "lost": counts["lost"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", default="/work/wt/base27,.")
    ap.add_argument("--rounds", type=int, default=2)
    for name, default in (("rate", 10_000), ("warm-s", 5), ("step-s", 15), ("idle-s", 10)):
        ap.add_argument(f"--{name}", type=float, default=default)
    ap.add_argument("--flush-ms", type=float, default=None, help="the feed's mqtt.flush_ms")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="feedhouse-bench-mqtt-rounds-"))
    for r in range(args.rounds):
        for i, code in enumerate(args.code.split(",")):
            path = None if code in ("", ".") else Path(code)
            print(json.dumps(session(path, root / f"r{r}c{i}", args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

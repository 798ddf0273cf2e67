"""MQTT ingest sessions for `bench.mqtt`: one broker, one `feedhouse run`, several load
steps; CPU of each process per message, backlog, latency, loss.

    python -m bench.mqtt_ingest [--steps 10000,20000,30000] [--step-s 10] [--hold-s 60]
                                [--readings-per-message 1] [--naive] [--flush-ms 50]
                                [--name-threads]

A step publishes at one offered rate (readings/s; QoS 1, no duplicates, 200 devices x 5
sensors) for `step_s`, then waits until the broker holds no unacknowledged message (acks
follow commits). Per step:
- CPU seconds of the ingest process, Mosquitto and the load generator (this process's
  publisher threads) from /proc over [load start, drained], divided by messages;
- `held` (the broker's unacknowledged messages, $SYS, every second) during the load: the
  backlog is bounded when the publishers kept the offered rate (>= 95 %) and `held` at
  the end stayed within 3 s of messages (acks trail commits by one 1-s epoch);
- the time span of its readings' device timestamps, for latency after the run.

The ramp goes up the steps until one is not bounded; the highest bounded rate is then
held for `hold_s` (60 s in `make bench`); if that hold is not bounded either, the step
below it is held. At the end the ingest stops and the store is counted: lost = unique
readings sent - unique stored, and device_ts -> inserted_ts p50/p99 per step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from feedhouse.app.drills.mqtt import FEED, write_config
from feedhouse.app.drills.process import RunProcess, child_env
from feedhouse.app.mqtt.broker import Broker, BrokerStats
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.config import load_settings
from feedhouse.core.settings import MqttSettings
from feedhouse.store.client import warehouse

TICKS = os.sysconf("SC_CLK_TCK")
DEVICES, SENSORS = 200, 5


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    """Child pids (the worker processes of `feedhouse run --processes N`)."""
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(entry.name))
    return kids


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of the ingest and its worker processes."""
    return cpu_s(pid) + sum(cpu_s(k) for k in children(pid))


def threads_cpu_s(pid: int, names: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds per thread group of a process: the main thread ("main", where Bytewax's
    worker runs), other Python threads ("python": paho, committer, status; or their group
    in `names`, thread id -> group) and native threads by their OS name (chDB's pools)."""
    out: dict[str, float] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = (names or {}).get(int(tid)) or ("main" if int(tid) == pid else (
            "python" if comm.startswith(("python", "feedhouse")) else comm.rstrip("0123456789")))
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name (py-spy); {} without py-spy."""
    from bench.profile import py_spy

    spy = py_spy()
    if spy is None:
        return {}
    out = subprocess.run([spy, "dump", "--pid", str(pid), "--json"], capture_output=True,
                         text=True, timeout=30)
    try:
        return {t["os_thread_id"]: t["thread_name"] for t in json.loads(out.stdout)
                if t.get("os_thread_id")}
    except (ValueError, KeyError):
        return {}


def group(name: str) -> str:
    """A thread group from a Python thread name (paho's network threads are one)."""
    if name.startswith("paho-mqtt-client"):
        return "paho"
    if name == "MainThread":
        return "main (Bytewax worker)"
    return name


def own_cpu_s() -> float:
    return time.process_time()


class IngestAt(RunProcess):
    """The ingest run from another checkout (A/B comparisons): its folder is the working
    directory (first on `python -m`'s path) and PYTHONPATH; an older checkout may have the
    CLI at feedhouse.cli.main (before the layered tree)."""

    def __init__(self, config: Path, log_path: Path, code: Path) -> None:
        super().__init__(config, log_path)
        self.code = code

    def start(self) -> IngestAt:
        layered = (self.code / "feedhouse" / "app" / "cli" / "main.py").exists()
        main = "feedhouse.app.cli.main" if layered else "feedhouse.cli.main"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", main, "--config", str(self.config), "run"],
                env=child_env(PYTHONPATH=str(self.code)), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.code)
        return self


class Session:
    """Mosquitto + `feedhouse run` on a fresh store, with load steps published into it."""

    def __init__(self, work: Path, readings_per_message: int = 1, clients: int = 2,
                 ingest_code: Path | None = None, processes: int = 1,
                 mqtt_extra: dict | None = None, name_threads: bool = False) -> None:
        self.work = work
        self.rpm = readings_per_message
        work.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(work / "mosquitto").start()
        self.config = write_config(work, self.broker.port, "3.1.1", clients, False,
                                   readings_per_message)
        if mqtt_extra:  # e.g. {"flush_ms": 100}: the feed's mqtt settings for this session
            config = yaml.safe_load(self.config.read_text())
            config["feeds"][0]["mqtt"].update(mqtt_extra)
            self.config.write_text(yaml.safe_dump(config))
        args = ("--processes", str(processes)) if processes > 1 else ()
        self.ingest = RunProcess(self.config, work / "ingest.log", args) if ingest_code is None \
            else IngestAt(self.config, work / "ingest.log", ingest_code)
        self.stats = BrokerStats(self.broker.port)
        self.seq = 0
        self.unique_sent = 0
        self.steps: list[dict] = []
        self.ingest.start()
        if not self.stats.wait("shared_subscriptions", lambda n: n >= clients, 90, 0.0):
            self.close()
            raise RuntimeError(f"ingest did not subscribe: see {work / 'ingest.log'}")
        # thread id -> group (py-spy before each step: the committer starts with the
        # dataflow's sink), so paho and the committer are apart; off: "python" for both
        self.name_threads = name_threads
        self.names: dict[int, str] = {}

    def step(self, rate: float, seconds: float) -> dict:
        """Publish `rate` readings/s for `seconds`; wait for the drain; the step's figures."""
        plan = LoadPlan(rate=rate / self.rpm, devices=DEVICES, sensors=SENSORS, seconds=seconds,
                        duplicates=0.0, readings_per_message=self.rpm, seq_start=self.seq)
        # readings per series this step, with room: next step's sequence numbers are new
        self.seq += int(rate * seconds / (DEVICES * SENSORS) * 1.5) + 1000
        ingest_pid, broker_pid = self.ingest.proc.pid, self.broker.proc.pid
        if self.name_threads:
            self.names = {tid: group(n) for tid, n in thread_names(ingest_pid).items()}
        held: list[int] = []
        sent: dict = {}
        load = threading.Thread(target=lambda: sent.update(
            run_load(MqttSettings(port=self.broker.port), plan)), name="bench-load")
        c0 = (tree_cpu_s(ingest_pid), cpu_s(broker_pid), own_cpu_s())
        th0 = threads_cpu_s(ingest_pid, self.names)
        t0_us = time.time_ns() // 1000
        started = time.monotonic()
        load.start()
        while load.is_alive():
            load.join(1.0)
            if load.is_alive():
                held.append(self.stats.read(timeout=1.0).get("held", -1))
        end_held = self.stats.read(timeout=2.0).get("held", -1)
        t1_us = time.time_ns() // 1000
        published_s = time.monotonic() - started
        drained = self.stats.wait("held", lambda n: n == 0, 120, 0.5)
        c1 = (tree_cpu_s(ingest_pid), cpu_s(broker_pid), own_cpu_s())
        th1 = threads_cpu_s(ingest_pid, self.names)
        msgs = sent.get("count", 0)
        self.unique_sent += sent.get("unique_readings", 0)
        offered_msgs = rate / self.rpm * seconds
        bounded = (msgs >= 0.95 * offered_msgs and 0 <= end_held <= max(3 * rate / self.rpm, 2000)
                   and drained)
        def per_msg(d):
            return (round(d * 1e6 / msgs, 2) if msgs else None)
        result = {
            "offered_readings_per_s": rate, "seconds": seconds, "messages": msgs,
            "published_messages_per_s": round(msgs / published_s, 1),
            "held_during": held, "held_at_end": end_held, "drained": drained,
            "bounded": bounded,
            "cpu_us_per_message": {"ingest": per_msg(c1[0] - c0[0]),
                                   "mosquitto": per_msg(c1[1] - c0[1]),
                                   "load_generator": per_msg(c1[2] - c0[2])},
            # threads that ended during the step (none normally) are left out
            "ingest_threads_us_per_message": {
                k: per_msg(v - th0.get(k, 0.0)) for k, v in sorted(th1.items())
                if v - th0.get(k, 0.0) > 0},
            "device_ts_span_us": [t0_us, t1_us],
        }
        self.steps.append(result)
        return result

    def ramp(self, steps: list[float], step_s: float, hold_s: float,
             at_least: float = 0.0) -> dict:
        """Steps up until one is not bounded (but on to `at_least` in any case: the CPU
        and latency figures need that step); then the highest bounded rate is held."""
        best = None
        for rate in steps:
            if self.step(rate, step_s)["bounded"]:
                best = rate if best is None else max(best, rate)
            elif rate >= at_least:
                break
        held = None
        candidates = [r for r in steps if best is not None and r <= best][::-1][:2]
        for rate in candidates:
            held = self.step(rate, hold_s)
            if held["bounded"]:
                return {"rate": rate, "hold": held}
        return {"rate": None, "hold": held}

    def finish(self) -> dict:
        """Stop the ingest; count the store (lost) and latency per step."""
        self.ingest.stop()
        settings = load_settings(self.config)
        with warehouse(settings) as client:
            client.command("OPTIMIZE TABLE iot.readings FINAL")
            unique = client.query("SELECT uniqExact(device_id, sensor, seq) FROM iot.readings "
                                  "WHERE feed = {f:String}", parameters={"f": FEED}
                                  ).result_rows[0][0]
            for step in self.steps:
                a, b = step["device_ts_span_us"]
                # inserted_ts is now64() per insert: its distinct values count the inserts
                (p50, p99), inserts = client.query(
                    "SELECT quantiles(0.5, 0.99)(toUnixTimestamp64Micro(inserted_ts) - "
                    "toUnixTimestamp64Micro(device_ts)), uniqExact(inserted_ts) "
                    "FROM iot.readings WHERE feed = {f:String}"
                    " AND toUnixTimestamp64Micro(device_ts) BETWEEN {a:Int64} AND {b:Int64}",
                    parameters={"f": FEED, "a": a, "b": b}).result_rows[0]
                step["latency_ms"] = {"p50": round(p50 / 1000, 1), "p99": round(p99 / 1000, 1)}
                step["inserts"] = inserts
        return {"unique_sent": self.unique_sent, "unique_stored": unique,
                "lost": self.unique_sent - unique}

    def close(self) -> None:
        self.ingest.kill()
        self.broker.stop()


def naive(work: Path, rate: float, seconds: float) -> dict:
    """The plain paho + json + clickhouse-connect subscriber (bench.mqtt_naive) under the
    same load: its CPU µs per message, beside Mosquitto's and the load generator's."""
    work.mkdir(parents=True, exist_ok=True)
    broker = Broker(work / "mosquitto").start()
    proc = subprocess.Popen([sys.executable, "-m", "bench.mqtt_naive", "--port",
                             str(broker.port), "--home", str(work / "naive")],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        plan = LoadPlan(rate=rate, devices=DEVICES, sensors=SENSORS, seconds=seconds)
        c0 = (cpu_s(broker.proc.pid), own_cpu_s())
        sent = run_load(MqttSettings(port=broker.port), plan)
        c1 = (cpu_s(broker.proc.pid), own_cpu_s())
        out, _ = proc.communicate(timeout=seconds * 10 + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
        broker.stop()
    result = json.loads(out.strip().splitlines()[-1])
    msgs = result["received"] or 1
    return {"messages_sent": sent["count"], "received": result["received"],
            "inserted": result["inserted"],
            "cpu_us_per_message": {
                "naive": round((result["cpu_s"] - ready["ready_cpu_s"]) * 1e6 / msgs, 2),
                "mosquitto": round((c1[0] - c0[0]) * 1e6 / msgs, 2),
                "load_generator": round((c1[1] - c0[1]) * 1e6 / msgs, 2)}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="10000,20000,30000")
    ap.add_argument("--step-s", type=float, default=10)
    ap.add_argument("--hold-s", type=float, default=60)
    ap.add_argument("--readings-per-message", type=int, default=1)
    ap.add_argument("--naive", action="store_true")
    ap.add_argument("--processes", type=int, default=1,
                    help="ingest processes (feedhouse run --processes; CPU summed over them)")
    ap.add_argument("--ingest-code", type=Path, default=None,
                    help="run the ingest from this checkout (PYTHONPATH), e.g. a worktree "
                    "of the commit before, for a side-by-side comparison")
    ap.add_argument("--flush-ms", type=float, default=None,
                    help="the feed's mqtt.flush_ms (default: the setting's default)")
    ap.add_argument("--name-threads", action="store_true",
                    help="per-thread CPU by Python thread name (py-spy): paho, committer apart")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feedhouse-bench-mqtt-"))
    extra = {"flush_ms": args.flush_ms} if args.flush_ms else None
    session = Session(work / "s", args.readings_per_message, ingest_code=args.ingest_code,
                      processes=args.processes, mqtt_extra=extra,
                      name_threads=args.name_threads)
    try:
        ramp = session.ramp([float(s) for s in args.steps.split(",")], args.step_s, args.hold_s)
        counts = session.finish()
    finally:
        session.close()
    print(json.dumps({"ramp_rate": ramp["rate"], **counts, "steps": session.steps}, indent=1))
    if args.naive:
        print(json.dumps(naive(work / "naive", 10_000, args.step_s), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU per message of the MQTT source's network side alone: paho's threads (the tuned
`SubscriberClient`) and the hand-over to the source's inbox, with and without the
network thread's read coalescing (`SubscriberClient.coalesce_s`), side by side.

    python -m bench.mqtt_paho [--rate 10000] [--seconds 6] [--rounds 2] [--coalesce-ms 10]

One Mosquitto (docs/mosquitto.conf), the load generator's messages (200 devices x 5
sensors, QoS 1) and two `dataflows.sources.mqtt.Subscriber`s behind the shared
subscription, as in `feedhouse run`; a drain thread takes each inbox every 20 ms and
acks what it took one round later (as the epochs do). Rounds alternate the two settings
on the same broker. Per round: CPU seconds of the two paho network threads
(/proc/self/task), of Mosquitto, socket reads, messages per read, received, µs per
message. No dataflow, no parsing, no store: see `bench.mqtt_stages` for those.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from dataflows.sources.mqtt import Sent, Subscriber
from feedhouse.app.mqtt.broker import Broker
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.settings import MqttSettings

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(native_id: int, pid: int | None = None) -> float:
    path = f"/proc/{os.getpid() if pid is None else pid}/task/{native_id}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def one_round(port: int, rate: float, seconds: float, coalesce_s: float, seq: int,
              broker_pid: int) -> dict:
    settings = MqttSettings(port=port, client_id="bench-paho")
    subs = [Subscriber("bench", settings, f"bench-paho-{i}", i) for i in range(settings.clients)]
    for sub in subs:
        sub.client.coalesce_s = coalesce_s
        sub.start()
    deadline = time.monotonic() + 30
    while not all(s.connected for s in subs) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # subscriptions in place
    stop = threading.Event()
    received = [0]

    def drain() -> None:
        previous: list[list[Sent]] = [[] for _ in subs]
        while not stop.is_set():
            time.sleep(0.02)
            for k, sub in enumerate(subs):
                got = sub.drain(100_000)
                if previous[k]:
                    sub.ack(previous[k])
                previous[k] = []
                if got.mids:
                    received[0] += len(got.mids)
                    previous[k] = [Sent(0, got.gens, got.mids, got.qoss)]
        for k, sub in enumerate(subs):
            if previous[k]:
                sub.ack(previous[k])

    drainer = threading.Thread(target=drain, name="bench-drain")
    drainer.start()
    threads = [s.client._thread for s in subs]
    ids = [t.native_id for t in threads if t is not None]
    c0 = sum(thread_cpu_s(i) for i in ids), proc_cpu_s(broker_pid)
    r0 = sum(s.client.reads for s in subs), sum(s.client.delivered for s in subs)
    plan = LoadPlan(rate=rate, devices=200, sensors=5, seconds=seconds, seq_start=seq)
    sent = run_load(MqttSettings(port=port), plan)
    time.sleep(1.0)
    c1 = sum(thread_cpu_s(i) for i in ids), proc_cpu_s(broker_pid)
    r1 = sum(s.client.reads for s in subs), sum(s.client.delivered for s in subs)
    stop.set()
    drainer.join()
    for sub in subs:
        sub.stop()
    n = received[0] or 1
    reads = r1[0] - r0[0]
    return {"coalesce_ms": coalesce_s * 1000, "sent": sent["count"], "received": received[0],
            "paho_us_per_message": round((c1[0] - c0[0]) * 1e6 / n, 2),
            "mosquitto_us_per_message": round((c1[1] - c0[1]) * 1e6 / n, 2),
            "reads": reads, "messages_per_read": round((r1[1] - r0[1]) / max(reads, 1), 1)}


def run(rate: float, seconds: float, rounds: int, coalesce_ms: float, report=None) -> list[dict]:
    """`rounds` pairs of rounds (pause off/on, then on/off, ...) on one broker."""
    work = Path(tempfile.mkdtemp(prefix="feedhouse-bench-paho-"))
    out: list[dict] = []
    with Broker(work / "mosquitto") as broker:
        for r in range(rounds):
            for c in ((0.0, coalesce_ms / 1000) if r % 2 == 0 else (coalesce_ms / 1000, 0.0)):
                out.append({"load_average": os.getloadavg()[0], **one_round(
                    broker.port, rate, seconds, c, len(out) * 1_000_000, broker.proc.pid)})
                if report is not None:
                    report(out[-1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--coalesce-ms", type=float, default=10.0)
    args = ap.parse_args()
    run(args.rate, args.seconds, args.rounds, args.coalesce_ms,
        lambda row: print(json.dumps(row), flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""MQTT load generator: realistic sensor readings at a steady rate (`feedhouse mqtt-load`).

Devices `dev00000..` at sites `site0..3` publish on `<prefix>/<site>/<device>/<sensor>`
(the default topic template) one JSON object per reading:
`{"seq": n, "value": v, "ts": device_ts_us, "unit": "C"}` with per-device, per-sensor
sequence numbers, device timestamps and a random walk of plausible values per sensor type.
`duplicates` republishes that fraction of messages again with identical payloads (what a
device retrying after a lost PUBACK does). Several paho clients, each on its own thread,
share the devices; each keeps at most `max_outstanding` unacknowledged publishes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import orjson
import paho.mqtt.client as mqtt

from dataflows.mqtt_client import connect_args, make_client
from feedhouse.settings import MqttSettings

# sensor type -> (unit, base value, walk step, lower bound or None)
SENSOR_TYPES: dict[str, tuple[str, float, float, float | None]] = {
    "temperature": ("C", 21.0, 0.05, None),
    "humidity": ("%", 45.0, 0.2, 0.0),
    "pressure": ("hPa", 1013.0, 0.1, 800.0),
    "vibration": ("mm/s", 2.0, 0.1, 0.0),
    "current": ("A", 12.0, 0.2, 0.0),
}
TYPES = list(SENSOR_TYPES)
TICK_S = 0.005


def sensor_names(count: int) -> list[str]:
    """temperature, humidity, ..., then temperature1, humidity1, ..."""
    return [TYPES[k % len(TYPES)] + (str(k // len(TYPES)) if k >= len(TYPES) else "")
            for k in range(count)]


def sensor_type(name: str) -> str:
    return name.rstrip("0123456789")


@dataclass
class LoadPlan:
    rate: float  # messages per second, duplicates included
    devices: int
    sensors: int
    seconds: float
    qos: int = 1
    duplicates: float = 0.0
    topic_prefix: str = "plant"
    seq_start: int = 0
    clients: int = 0  # 0: one per 15,000 msgs/s
    max_outstanding: int = 5000
    seed: int = 7


@dataclass
class LoadStats:
    count: int = 0
    unique: int = 0
    duplicates: int = 0
    acked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Publisher(threading.Thread):
    def __init__(self, index: int, mqtt: MqttSettings, plan: LoadPlan, series: list,
                 rate: float, stats: LoadStats, stop_at: float) -> None:
        super().__init__(name=f"mqtt-load-{index}", daemon=True)
        self.plan, self.series, self.rate, self.stats = plan, series, rate, stats
        self.stop_at = stop_at
        self.rng = random.Random(plan.seed * 1000 + index)
        self.client = make_client(mqtt, f"feedhouse-load-{index}-{time.time_ns()}",
                                  persistent=False)
        # No paho in-flight cap: after a reconnect paho 2.2 stops resending at the first
        # message it held back as "queued", stranding the rest. `max_outstanding` throttles.
        self.client.max_inflight_messages_set(0)
        self.client.on_publish = self._on_publish
        self.acked = 0
        self.sent = 0
        self.mqtt = mqtt
        self.error: BaseException | None = None

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acked += 1

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by run_load
            self.error = exc

    def _run(self) -> None:
        plan, rng, series = self.plan, self.rng, self.series
        self.client.connect(**connect_args(self.mqtt, persistent=False))
        self.client.loop_start()
        recent: deque[tuple[str, bytes]] = deque(maxlen=1000)
        publish, qos, dup_p = self.client.publish, plan.qos, plan.duplicates
        start = time.monotonic()
        i = 0
        unique = dups = 0
        while True:
            now = time.monotonic()
            if now >= self.stop_at:
                break
            # Behind schedule after a stall: catch up, but never beyond max_outstanding
            # unacknowledged publishes (paho's message ids wrap at 65,535).
            due = min(int((now - start) * self.rate) - self.sent,
                      plan.max_outstanding - (self.sent - self.acked))
            if due <= 0:
                time.sleep(TICK_S)
                continue
            ts_us = time.time_ns() // 1000
            for _ in range(due):
                if recent and rng.random() < dup_p:
                    topic, payload = recent[rng.randrange(len(recent))]
                    dups += 1
                else:
                    s = series[i % len(series)]
                    i += 1
                    topic, payload = s.next_message(ts_us, rng)
                    recent.append((topic, payload))
                    unique += 1
                info = publish(topic, payload, qos)
                if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # cannot happen within the cap
                    raise RuntimeError("paho refused a publish: too many in flight")
                self.sent += 1
        with self.stats.lock:
            self.stats.count += self.sent
            self.stats.unique += unique
            self.stats.duplicates += dups

    def finish(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.plan.qos and self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.stats.lock:
            self.stats.acked += self.acked if self.plan.qos else self.sent
        self.client.disconnect()
        self.client.loop_stop()


class _Series:
    """One device's sensor: topic, sequence number, random-walk value."""

    __slots__ = ("topic", "seq", "value", "unit", "step", "floor")

    def __init__(self, topic: str, kind: str, seq_start: int, rng: random.Random) -> None:
        unit, base, step, floor = SENSOR_TYPES[kind]
        self.topic, self.seq, self.unit, self.step, self.floor = topic, seq_start, unit, step, floor
        self.value = base + rng.uniform(-10, 10) * step

    def next_message(self, ts_us: int, rng: random.Random) -> tuple[str, bytes]:
        v = self.value + rng.gauss(0.0, self.step)
        if self.floor is not None and v < self.floor:
            v = self.floor + abs(v - self.floor)
        self.value = v
        payload = orjson.dumps({"seq": self.seq, "value": round(v, 3), "ts": ts_us,
                                "unit": self.unit})
        self.seq += 1
        return self.topic, payload


def run_load(mqtt: MqttSettings, plan: LoadPlan, finish_timeout: float = 120.0) -> dict:
    """Publish per `plan`; returns {count, unique, duplicates, acked, seconds, rate}."""
    rng = random.Random(plan.seed)
    names = sensor_names(plan.sensors)
    series = [
        _Series(f"{plan.topic_prefix}/site{d % 4}/dev{d:05d}/{name}", sensor_type(name),
                plan.seq_start, rng)
        for d in range(plan.devices) for name in names
    ]
    n_clients = plan.clients or max(1, min(len(series), int(plan.rate // 15_000) + 1))
    stats = LoadStats()
    started = time.monotonic()
    stop_at = started + plan.seconds
    pubs = [
        _Publisher(k, mqtt, plan, series[k::n_clients], plan.rate / n_clients, stats, stop_at)
        for k in range(n_clients)
    ]
    for p in pubs:
        p.start()
    for p in pubs:
        p.join()
    for p in pubs:
        p.finish(finish_timeout)
    elapsed = time.monotonic() - started
    errors = [p.error for p in pubs if p.error is not None]
    if errors:
        raise errors[0]
    return {
        "count": stats.count,
        "unique": stats.unique,
        "duplicates": stats.duplicates,
        "acked": stats.acked,
        "seconds": round(elapsed, 3),
        "rate": round(stats.count / elapsed, 1) if elapsed else 0.0,
    }

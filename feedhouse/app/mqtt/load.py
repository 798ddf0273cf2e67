"""MQTT load generator: realistic sensor readings at a steady rate (`feedhouse mqtt-load`).

Devices `dev00000..` at sites `site0..3` publish on `<prefix>/<site>/<device>/<sensor>`
(the default topic template) one JSON object per reading:
`{"seq": n, "value": v, "ts": device_ts_us, "unit": "C"}` with per-device, per-sensor
sequence numbers, device timestamps and a random walk of plausible values per sensor type.
Batched telemetry (`readings_per_message` N > 1): each message is a JSON array of N
consecutive samples of one sensor, 10 ms apart (the feed's `payload_format: json_array`).
`duplicates` republishes that fraction of messages again with identical payloads (what a
device retrying after a lost PUBACK does). Several connections (`feedhouse.app.mqtt.wire`, no
paho: see there why), each on its own thread, share the devices; each keeps at most
`max_outstanding` unacknowledged publishes.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import orjson

from feedhouse.app.mqtt.wire import (
    CONNACK,
    PUBACK,
    PacketReader,
    PublishEncoder,
    WireError,
    acked_mid,
    as_duplicate,
    check_connack,
    connect_packet,
    disconnect_packet,
)
from feedhouse.core.settings import MqttSettings

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
MAX_WRITE = 2000  # publishes per write at most (acks are read between writes)
KEEPALIVE_S = 60
SOCKET_TIMEOUT_S = 30.0
RECONNECT_FOR_S = 60.0  # a broker restart: keep trying to reconnect this long
MSGS_PER_CLIENT = 30_000  # publisher connections: one per this many msgs/s (default)
SAMPLE_US = 10_000  # batched telemetry: one sample every 10 ms, N samples per message


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
    clients: int = 0  # 0: one per MSGS_PER_CLIENT msgs/s
    readings_per_message: int = 1  # > 1: a JSON array of that many consecutive samples
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
    """One broker connection, written from this thread alone (no network thread): each
    tick encodes the publishes that are due, sends them in one write and reads back the
    PUBACKs that arrived. After a lost connection it reconnects and resends every
    unacknowledged publish with the DUP flag (the broker restart drill)."""

    def __init__(self, index: int, mqtt: MqttSettings, plan: LoadPlan, series: list,
                 rate: float, stats: LoadStats, stop_at: float) -> None:
        super().__init__(name=f"mqtt-load-{index}", daemon=True)
        self.plan, self.series, self.rate, self.stats = plan, series, rate, stats
        self.stop_at = stop_at
        self.rng = random.Random(plan.seed * 1000 + index)
        self.mqtt = mqtt
        self.client_id = f"feedhouse-load-{index}-{time.time_ns()}"
        self.encoder = PublishEncoder(plan.qos, mqtt.protocol == "5")
        self.unacked: dict[int, bytes] = {}  # mid -> PUBLISH packet, QoS 1/2
        self.mid = 0
        self.sock: socket.socket | None = None
        self.reader = PacketReader()
        self.acked = 0
        self.sent = 0
        self.error: BaseException | None = None

    # --- connection ------------------------------------------------------------------
    def _connect(self, deadline: float) -> None:
        """Connect (retrying with backoff until `deadline`) and resend what is unacked."""
        mq, delay = self.mqtt, 0.1
        password = mq.password.get_secret_value() if mq.password else None
        while True:
            try:
                sock = socket.create_connection((mq.host, mq.port), timeout=SOCKET_TIMEOUT_S)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(connect_packet(self.client_id, KEEPALIVE_S, mq.protocol == "5",
                                            mq.username, password))
                reader = PacketReader()
                packets: list = []
                while not packets:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("connection closed before CONNACK")
                    packets = reader.feed(data)
                kind, body = packets[0]
                if kind != CONNACK:
                    raise WireError(f"expected CONNACK, got packet type {kind:#x}")
                check_connack(body)
                break
            except WireError:
                raise
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        # Blocking from here: a socket timeout would make Python poll before every recv,
        # MSG_DONTWAIT included; writes wait while the broker applies backpressure.
        sock.settimeout(None)
        self.sock, self.reader = sock, reader
        self._handle(packets[1:])
        if self.unacked:
            sock.sendall(b"".join(as_duplicate(p) for p in self.unacked.values()))

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self._reconnect()  # `data` is in `unacked` (QoS 1/2) and resent from there

    def _reconnect(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self._connect(time.monotonic() + RECONNECT_FOR_S)

    def _read_acks(self, wait_s: float = 0.0) -> None:
        sock = self.sock
        try:
            if wait_s and not select.select([sock], [], [], wait_s)[0]:
                return
            while True:
                data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
                if not data:
                    raise ConnectionError("broker closed the connection")
                self._handle(self.reader.feed(data))
                if len(data) < 1 << 16:
                    return
        except BlockingIOError:
            return
        except OSError:
            self._reconnect()

    def _handle(self, packets: list[tuple[int, bytes]]) -> None:
        pop = self.unacked.pop
        for kind, body in packets:
            if kind == PUBACK and pop(acked_mid(body), None) is not None:
                self.acked += 1

    def _next_mid(self) -> int:
        mid = self.mid % 65535 + 1
        while mid in self.unacked:  # ids wrap at 65,535; skip one still outstanding
            mid = mid % 65535 + 1
        self.mid = mid
        return mid

    # --- publishing ------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._connect(time.monotonic() + RECONNECT_FOR_S)
            self._run()
        except BaseException as exc:  # reported by run_load
            self.error = exc

    def _run(self) -> None:
        plan, rng, series = self.plan, self.rng, self.series
        per_message = plan.readings_per_message
        recent: deque[tuple[str, bytes]] = deque(maxlen=1000)
        encode, qos, dup_p = self.encoder.encode, plan.qos, plan.duplicates
        unacked = self.unacked
        start = time.monotonic()
        i = 0
        unique = dups = 0
        while True:
            now = time.monotonic()
            if now >= self.stop_at:
                break
            if qos:
                self._read_acks()
            # Behind schedule after a stall: catch up, but never beyond max_outstanding
            # unacknowledged publishes (message ids wrap at 65,535).
            due = min(int((now - start) * self.rate) - self.sent, MAX_WRITE,
                      plan.max_outstanding - len(unacked))
            if due <= 0:
                if qos and len(unacked) >= plan.max_outstanding:
                    self._read_acks(TICK_S)
                else:
                    time.sleep(TICK_S)
                continue
            ts_us = time.time_ns() // 1000
            packets = []
            for _ in range(due):
                if recent and rng.random() < dup_p:
                    topic, payload = recent[rng.randrange(len(recent))]
                    dups += 1
                else:
                    s = series[i % len(series)]
                    i += 1
                    topic, payload = s.next_message(ts_us, rng, per_message)
                    recent.append((topic, payload))
                    unique += 1
                if qos:
                    mid = self._next_mid()
                    packet = unacked[mid] = encode(topic, payload, mid)
                else:
                    packet = encode(topic, payload, 0)
                packets.append(packet)
            self.sent += due
            self._send(b"".join(packets))
        with self.stats.lock:
            self.stats.count += self.sent
            self.stats.unique += unique
            self.stats.duplicates += dups

    def finish(self, timeout: float) -> None:
        """Wait (up to `timeout`) for the PUBACKs still due, then disconnect."""
        deadline = time.monotonic() + timeout
        if self.sock is None:
            return
        while self.plan.qos and self.unacked and time.monotonic() < deadline:
            self._read_acks(0.05)
        with self.stats.lock:
            self.stats.acked += self.acked if self.plan.qos else self.sent
        with contextlib.suppress(OSError):
            self.sock.sendall(disconnect_packet())
        self.sock.close()


class _Series:
    """One device's sensor: topic, sequence number, random-walk value."""

    __slots__ = ("topic", "seq", "value", "unit", "step", "floor")

    def __init__(self, topic: str, kind: str, seq_start: int, rng: random.Random) -> None:
        unit, base, step, floor = SENSOR_TYPES[kind]
        self.topic, self.seq, self.unit, self.step, self.floor = topic, seq_start, unit, step, floor
        self.value = base + rng.uniform(-10, 10) * step

    def _sample(self, ts_us: int, rng: random.Random) -> dict:
        v = self.value + rng.gauss(0.0, self.step)
        if self.floor is not None and v < self.floor:
            v = self.floor + abs(v - self.floor)
        self.value = v
        sample = {"seq": self.seq, "value": round(v, 3), "ts": ts_us, "unit": self.unit}
        self.seq += 1
        return sample

    def next_message(self, ts_us: int, rng: random.Random, readings: int = 1
                     ) -> tuple[str, bytes]:
        """One reading as a JSON object, or `readings` consecutive samples (SAMPLE_US
        apart, the last at `ts_us`) as a JSON array."""
        if readings == 1:
            return self.topic, orjson.dumps(self._sample(ts_us, rng))
        first = ts_us - (readings - 1) * SAMPLE_US
        samples = [self._sample(first + k * SAMPLE_US, rng) for k in range(readings)]
        return self.topic, orjson.dumps(samples)


def run_load(mqtt: MqttSettings, plan: LoadPlan, finish_timeout: float = 120.0) -> dict:
    """Publish per `plan`. Returns messages (count, unique, duplicates, acked, rate) and
    readings (readings, unique_readings, duplicate_readings, readings_per_message),
    seconds; with one reading per message the two sets agree."""
    rng = random.Random(plan.seed)
    names = sensor_names(plan.sensors)
    series = [
        _Series(f"{plan.topic_prefix}/site{d % 4}/dev{d:05d}/{name}", sensor_type(name),
                plan.seq_start, rng)
        for d in range(plan.devices) for name in names
    ]
    n_clients = plan.clients or max(1, min(len(series), int(plan.rate // MSGS_PER_CLIENT) + 1))
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
    n = plan.readings_per_message
    if errors:
        raise errors[0]
    return {
        "count": stats.count,
        "unique": stats.unique,
        "duplicates": stats.duplicates,
        "acked": stats.acked,
        "seconds": round(elapsed, 3),
        "rate": round(stats.count / elapsed, 1) if elapsed else 0.0,
        "readings_per_message": n,
        "readings": stats.count * n,
        "unique_readings": stats.unique * n,
        "duplicate_readings": stats.duplicates * n,
    }

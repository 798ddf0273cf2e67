"""MQTT test helpers: a Mosquitto fixture (shipped config, free port, stopped by PID) and
the ingest pipeline running in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from feedhouse.app.mqtt.broker import Broker
from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "mosquitto") as broker:
        yield broker


def mqtt_settings(home: Path, broker: Broker, **mqtt_over) -> Settings:
    feed = {"name": "plant", "kind": "mqtt",
            "mqtt": {"port": broker.port, "protocol": "3.1.1", "clients": 2, **mqtt_over}}
    return load_settings(home=str(home), reports_dir=str(home / "reports"), feeds=[feed])


@contextmanager
def pipeline(settings: Settings, sources=None) -> Iterator[threading.Thread]:
    """`dataflows.runner.run` in a thread; stopped (flushing) when the block ends."""
    from dataflows.runner import run

    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(settings, stop=stop, handle_signals=False, sources=sources)
        except BaseException as exc:  # re-raised in the test
            errors.append(exc)

    thread = threading.Thread(target=target, name="pipeline")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "pipeline did not stop"
    if errors:
        raise errors[0]


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish (topic, payload) pairs at QoS 1 and wait until the broker has them."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def load_cli_received(broker: Broker, *load_args: str) -> tuple[dict, list[tuple[str, object]]]:
    """Run `feedhouse mqtt-load --port <broker> *load_args` while a subscriber on plant/#
    collects what arrives: (the generator's last-line JSON, [(topic, payload)])."""
    from tests.support.cli import run_cli

    got: list[tuple[str, object]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append((m.topic, orjson.loads(m.payload)))
    client.connect("127.0.0.1", broker.port)
    client.subscribe("plant/#", 1)
    client.loop_start()
    try:
        proc = run_cli("mqtt-load", "--port", str(broker.port), *load_args)
        assert proc.returncode == 0, proc.stderr
        sent = orjson.loads(proc.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 10
        while len(got) < sent["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent, got

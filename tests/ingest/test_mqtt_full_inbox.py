"""A subscriber whose inbox stays full (the dataflow behind) keeps its MQTT session: paho's
network thread waits for room inside the delivery callback, and must keep the broker's
keepalive fed meanwhile, or the broker drops the client and redelivers everything
unacknowledged (the soak drill saw 33 such drops and a redelivery storm in 30 minutes)."""

from __future__ import annotations

import threading
import time

import pytest

from dataflows.sources.mqtt import Subscriber
from tests.support.mqtt import broker_fixture, mqtt_settings, publish  # noqa: F401

pytestmark = pytest.mark.integration  # starts a broker


def test_full_inbox_longer_than_the_keepalive_keeps_the_connection(broker, tmp_path):
    settings = mqtt_settings(tmp_path, broker, keepalive_s=5, queue_size=100)
    sub = Subscriber("plant", settings.feeds[0].mqtt, "full-inbox", 0)
    sub.start()
    try:
        deadline = time.monotonic() + 10
        while not sub.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sub.connected
        time.sleep(0.5)  # subscribed
        publish(broker.port, [(f"plant/a/d{i}/temperature", b'{"value": 1}')
                              for i in range(400)])
        time.sleep(14)  # inbox full, nobody draining: longer than 1.5 x keepalive
        assert 100 <= sub.queued < 400  # full (it may pass the limit by one socket read)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 400 and time.monotonic() < deadline:
            got += sub.drain(1000).mids
            time.sleep(0.05)
        assert "exceeded timeout" not in broker.log_path.read_text()
        assert sub.generation == 1  # never reconnected
        assert len(got) == 400  # each once: nothing redelivered
    finally:
        sub.stop()


def test_a_stop_while_the_inbox_is_full_does_not_hang(broker, tmp_path):
    """stop() during the wait for room: the network thread's ping must not send the
    DISCONNECT (its on_disconnect would deadlock inside on_message)."""
    settings = mqtt_settings(tmp_path, broker, keepalive_s=5, queue_size=100)
    sub = Subscriber("plant", settings.feeds[0].mqtt, "full-stop", 0)
    sub.start()
    deadline = time.monotonic() + 10
    while not sub.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    publish(broker.port, [(f"plant/a/d{i}/temperature", b'{"value": 1}') for i in range(300)])
    time.sleep(4)  # waiting for room, pinging (every 2.5 s)
    stopper = threading.Thread(target=sub.stop, daemon=True)
    stopper.start()
    stopper.join(15)
    assert not stopper.is_alive(), "stop() hung"

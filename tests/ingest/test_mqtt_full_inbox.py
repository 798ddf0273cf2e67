"""A subscriber whose inbox stays full (the dataflow behind) keeps its MQTT session: paho's
network thread waits for room inside the delivery callback, and must keep the broker's
keepalive fed meanwhile, or the broker drops the client and redelivers everything
unacknowledged (the soak drill saw 33 such drops and a redelivery storm in 30 minutes)."""

from __future__ import annotations

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
        assert len(sub.inbox) == 100
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 400 and time.monotonic() < deadline:
            got += sub.drain(1000)
            time.sleep(0.05)
        assert "exceeded timeout" not in broker.log_path.read_text()
        assert sub.generation == 1  # never reconnected
        assert len(got) == 400  # each once: nothing redelivered
    finally:
        sub.stop()

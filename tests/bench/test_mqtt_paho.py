"""`python -m bench.mqtt_paho`: the MQTT source's network side alone, read pause off and
on, on a real Mosquitto: every message published arrives, and each round reports its CPU
per message and messages per socket read."""

from __future__ import annotations

import pytest

from bench.mqtt_paho import run

pytestmark = pytest.mark.integration  # starts a broker


def test_both_settings_receive_every_message_and_report_their_reads():
    rows = run(rate=400, seconds=1.5, rounds=1, coalesce_ms=10)
    assert [r["coalesce_ms"] for r in rows] == [0.0, 10.0]
    for r in rows:
        assert r["received"] == r["sent"] > 0
        assert r["reads"] > 0 and r["messages_per_read"] > 0
        assert r["paho_us_per_message"] >= 0 and r["mosquitto_us_per_message"] >= 0

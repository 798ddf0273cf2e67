"""Batched telemetry: N readings per MQTT message (a JSON array of consecutive samples of
one sensor), end to end on real Mosquitto and real chDB, through the load generator, its
CLI and `feedhouse drill mqtt --readings-per-message`."""

from __future__ import annotations

import orjson
import pytest

from feedhouse.app.drills.mqtt import MALFORMED, dead_letters_expected, write_config
from feedhouse.app.mqtt.broker import BrokerStats
from feedhouse.app.mqtt.load import SAMPLE_US, LoadPlan, run_load
from feedhouse.core.config import load_settings
from feedhouse.core.settings import MqttSettings
from feedhouse.store.client import warehouse
from tests.support.cli import run_cli
from tests.support.mqtt import broker_fixture, load_cli_received, mqtt_settings, pipeline  # noqa: F401

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_batched_messages_with_duplicates_store_exactly_the_unique_readings(broker, home):
    settings = mqtt_settings(home, broker, payload_format="json_array")
    with pipeline(settings):
        stats = BrokerStats(broker.port)
        assert stats.wait("shared_subscriptions", lambda n: n >= 2, 60, 0.0)
        sent = run_load(MqttSettings(port=broker.port, protocol="3.1.1"),
                        LoadPlan(rate=300, devices=20, sensors=5, seconds=3, duplicates=0.1,
                                 readings_per_message=5))
        assert stats.wait("held", lambda n: n == 0, 60, 2.5)
    assert sent["readings_per_message"] == 5
    assert sent["acked"] == sent["count"] == sent["unique"] + sent["duplicates"]
    assert sent["duplicates"] > 0
    assert sent["readings"] == 5 * sent["count"]
    assert sent["unique_readings"] == 5 * sent["unique"]
    assert sent["duplicate_readings"] == 5 * sent["duplicates"]
    with warehouse(settings) as client:
        stored, unique, series = client.query(
            "SELECT count(), uniqExact(device_id, sensor, seq), uniqExact(device_id, sensor) "
            "FROM iot.readings").result_rows[0]
        dead = client.query("SELECT count() FROM ops.dead_letter").result_rows[0][0]
    assert stored == unique == sent["unique_readings"]
    assert series == 100 and dead == 0


def test_mqtt_load_cli_sends_arrays_of_consecutive_samples(broker):
    sent, got = load_cli_received(broker, "--rate", "200", "--devices", "2", "--sensors", "3",
                                  "--seconds", "1", "--readings-per-message", "4")
    assert sent["count"] == len(got) > 0
    assert sent["readings"] == sent["unique_readings"] == 4 * sent["count"]
    seqs: dict[str, list[int]] = {}
    for topic, samples in got:
        assert len(samples) == 4
        assert [s["ts"] - samples[0]["ts"] for s in samples] == [0, SAMPLE_US, 2 * SAMPLE_US,
                                                                  3 * SAMPLE_US]
        seqs.setdefault(topic, []).extend(s["seq"] for s in samples)
    assert len(seqs) == 6
    assert all(s == list(range(len(s))) for s in seqs.values())  # consecutive, gapless


def test_drill_configures_json_arrays_and_counts_readings(tmp_path):
    config = write_config(tmp_path, 1883, "3.1.1", 2, False, readings_per_message=10)
    assert load_settings(config).feeds[0].mqtt.payload_format == "json_array"
    assert load_settings(write_config(tmp_path, 1883, "3.1.1", 2, False)
                         ).feeds[0].mqtt.payload_format == "json"
    assert dead_letters_expected(1) == len(MALFORMED)
    assert dead_letters_expected(10) == len(MALFORMED) + 2  # "[1, 2, 3]": one per element
    proc = run_cli("drill", "mqtt", "--rate", "3000", "--seconds", "3", "--devices", "20",
                   "--readings-per-message", "10", "--work-dir", str(tmp_path / "drill"),
                   timeout=300)
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"], result
    assert result["readings_per_message"] == 10
    assert result["sent_readings"] == 10 * result["sent"] > 0
    assert result["stored"] == result["unique_sent"] and result["lost"] == 0
    assert result["dead_lettered"] == dead_letters_expected(10)

"""MQTT ingestion end to end on real Mosquitto and real chDB: exactly the unique readings
stored, malformed payloads dead-lettered, nothing lost across a broker restart or an
ingest SIGKILL, and no message acknowledged before its batch is committed."""

from __future__ import annotations

import threading

import orjson
import pytest
from bytewax.outputs import StatefulSinkPartition

import dataflows.flow
from dataflows.sink.stage import ClickHouseSink
from dataflows.sources.mqtt import MqttSource
from feedhouse.app.drills.mqtt import MALFORMED, choose_subscriptions, run_mqtt_drill
from feedhouse.app.mqtt.broker import BrokerStats, mosquitto_version
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.settings import MqttSettings
from feedhouse.store.client import warehouse
from tests.support.cli import run_cli
from tests.support.mqtt import broker_fixture, load_cli_received, mqtt_settings, pipeline, publish  # noqa: F401

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def wait_subscribed(broker, clients: int = 2) -> BrokerStats:
    stats = BrokerStats(broker.port)
    assert stats.wait("shared_subscriptions", lambda n: n >= clients, 60, 0.0)
    return stats


def test_unique_readings_stored_and_malformed_dead_lettered(broker, home):
    settings = mqtt_settings(home, broker, topics=["plant/#"])  # wider than the template
    with pipeline(settings):
        stats = wait_subscribed(broker)
        publish(broker.port, [(f"plant/s1/bad{i}/temperature", p) for i, p in enumerate(MALFORMED)]
                + [("plant/s1/d1", b'{"seq": 1, "value": 1, "ts": 1763700000}')])
        sent = run_load(MqttSettings(port=broker.port, protocol="3.1.1"),
                        LoadPlan(rate=1500, devices=20, sensors=5, seconds=3, duplicates=0.1))
        assert stats.wait("held", lambda n: n == 0, 60, 2.5)
    assert sent["duplicates"] > 0 and sent["acked"] == sent["count"]
    with warehouse(settings) as client:
        stored, unique = client.query(
            "SELECT count(), uniqExact(device_id, sensor, seq) FROM iot.readings").result_rows[0]
        units = dict(client.query("SELECT sensor, any(unit) FROM iot.readings GROUP BY sensor")
                     .result_rows)
        dead = client.query("SELECT raw, error FROM ops.dead_letter WHERE feed = 'plant'"
                            " ORDER BY error").result_rows
    assert stored == unique == sent["unique"]
    assert units == {"temperature": "C", "humidity": "%", "pressure": "hPa",
                     "vibration": "mm/s", "current": "A"}
    assert len(dead) == len(MALFORMED) + 1
    reasons = " | ".join(error for _, error in dead)
    for expected in ("payload is not JSON", "value is missing", "seq -3 out of range",
                     "expected an object", "value is not a number",
                     "topic does not match template"):
        assert expected in reasons
    assert {raw for raw, _ in dead} >= {p.decode() for p in MALFORMED}


def test_drill_subscription_mode_auto_goes_static_only_when_the_broker_loses_shared_ones():
    assert choose_subscriptions("auto", True, (2, 0, 11))[0] == "static"
    assert choose_subscriptions("auto", True, None)[0] == "static"  # unknown: assume not
    assert choose_subscriptions("auto", True, (2, 0, 12))[0] == "shared"
    assert choose_subscriptions("auto", False, (2, 0, 11))[0] == "shared"
    assert choose_subscriptions("shared", True, (2, 0, 11)) == ("shared", "--subscriptions shared")
    with pytest.raises(FeedhouseError, match="--subscriptions must be one of"):
        choose_subscriptions("both", True, None)


def test_drill_cli_broker_restart_and_ingest_kill_lose_nothing(tmp_path):
    # The acceptance command, no flag: on Mosquitto 2.0.11 (does not restore shared
    # subscriptions across a restart) auto mode takes static slices.
    proc = run_cli("drill", "mqtt", "--rate", "1000", "--seconds", "9", "--devices", "40",
                   "--restart-broker", "--kill-ingest",
                   "--work-dir", str(tmp_path / "drill"),
                   timeout=300)
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, result
    version = mosquitto_version()
    if version is None or version <= (2, 0, 11):
        assert result["subscriptions"] == "static", result
        assert "does not restore shared subscriptions" in result["subscriptions_reason"]
    assert result["sent_acked_by_broker"] == result["sent"] > 0
    assert result["drained"] and result["dead_lettered"] == len(MALFORMED)
    assert result["lost"] == 0 and result["duplicates_stored"] == 0 and result["ok"]
    assert len(result["events"]) == 2
    from feedhouse.core.config import load_settings

    with warehouse(load_settings(tmp_path / "drill" / "feedhouse.yaml")) as client:
        gaps = client.query("SELECT count() FROM ops.feed_gaps WHERE feed = 'plant' AND "
                            "kind = 'disconnect' AND gap_end > gap_start").result_rows[0][0]
    assert gaps >= 1  # the broker restart is on record


def test_ingest_sigkill_redelivers_unacked_without_loss_or_duplicates(tmp_path):
    result = run_mqtt_drill(rate=1000, seconds=9, kill_ingest=True, devices=40,
                            work_dir=tmp_path / "drill")
    assert result["lost"] == 0 and result["duplicates_stored"] == 0, result
    assert result["ok"]
    # Redelivery: readings sent before the kill reached the store through the new process.
    from feedhouse.core.config import load_settings

    settings = load_settings(tmp_path / "drill" / "feedhouse.yaml")
    with warehouse(settings) as client:
        redelivered = client.query(
            "SELECT count() FROM iot.readings WHERE toUnixTimestamp64Micro(device_ts) < {k:Int64}"
            " AND toUnixTimestamp64Micro(received_ts) > {r:Int64}",
            parameters={"k": result["kill_ts_us"], "r": result["restart_ts_us"]},
        ).result_rows[0][0]
    assert redelivered > 0


class _RecordingPartition(StatefulSinkPartition):
    """Wraps a real sink partition: positions written, and committed once snapshot returns."""

    def __init__(self, inner, log) -> None:
        self.inner, self.log = inner, log
        self.written: set[tuple[str, int]] = set()

    def write_batch(self, items) -> None:
        for p in items:
            self.written.update((p.partition, pos) for pos in range(p.first_pos, p.last_pos + 1))
        self.inner.write_batch(items)

    def snapshot(self):
        state = self.inner.snapshot()
        with self.log["lock"]:
            self.log["committed"] |= self.written
        self.written = set()
        return state

    def close(self) -> None:
        self.inner.close()


class _RecordingSink(ClickHouseSink):
    log: dict = {}

    def build_part(self, step_id, for_part, resume_state):
        return _RecordingPartition(super().build_part(step_id, for_part, resume_state), self.log)


def test_no_message_is_acked_before_its_batch_is_committed(broker, home, monkeypatch):
    log = {"lock": threading.Lock(), "committed": set(), "acked": 0, "early": []}
    monkeypatch.setattr(_RecordingSink, "log", log)
    monkeypatch.setattr(dataflows.flow, "ClickHouseSink", _RecordingSink)

    def ack_hook(partition: str, positions: list[int]) -> None:
        with log["lock"]:
            log["acked"] += len(positions)
            log["early"] += [p for p in positions if (partition, p) not in log["committed"]]

    settings = mqtt_settings(home, broker)
    source = MqttSource(settings.feeds[0], settings, ack_hook=ack_hook)
    with pipeline(settings, sources=[("mqtt_in_plant", source)]):
        stats = wait_subscribed(broker)
        sent = run_load(MqttSettings(port=broker.port, protocol="3.1.1"),
                        LoadPlan(rate=1500, devices=20, sensors=5, seconds=3))
        assert stats.wait("held", lambda n: n == 0, 60, 0.5)
    assert log["acked"] >= sent["count"]
    assert log["early"] == []


@pytest.mark.parametrize("protocol", ["5"])
def test_mqtt5_persistent_session_end_to_end(broker, home, protocol):
    settings = mqtt_settings(home, broker, protocol=protocol, clients=1)
    with pipeline(settings):
        stats = wait_subscribed(broker, clients=1)
        sent = run_load(MqttSettings(port=broker.port, protocol=protocol),
                        LoadPlan(rate=1000, devices=10, sensors=5, seconds=2, duplicates=0.05))
        assert stats.wait("held", lambda n: n == 0, 60, 2.5)
    with warehouse(settings) as client:
        stored, unique = client.query(
            "SELECT count(), uniqExact(device_id, sensor, seq) FROM iot.readings").result_rows[0]
    assert stored == unique == sent["unique"]


def test_mqtt_load_cli_publishes_realistic_sequenced_readings(broker):
    sent, got = load_cli_received(broker, "--rate", "800", "--devices", "4", "--sensors", "5",
                                  "--seconds", "1.5", "--duplicates", "0.1")
    assert sent["count"] == len(got) == sent["unique"] + sent["duplicates"]
    assert sent["duplicates"] > 0
    series: dict[str, set[int]] = {}
    for topic, reading in got:
        series.setdefault(topic, set()).add(reading["seq"])
        low, high = {"temperature": (-50, 150), "humidity": (0, 100), "pressure": (800, 1200),
                     "vibration": (0, 50), "current": (0, 500)}[topic.rsplit("/", 1)[1]]
        assert low <= reading["value"] <= high
    assert len(series) == 20
    assert sum(len(s) for s in series.values()) == sent["unique"]
    assert all(s == set(range(len(s))) for s in series.values())  # gapless per sensor

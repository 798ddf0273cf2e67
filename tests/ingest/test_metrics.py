"""The Prometheus endpoint of `feedhouse run`: record values, scrape over HTTP, check them."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dataflows import metrics
from dataflows.metrics import BUCKETS, PipelineMetrics, start_metrics_server, stop_metrics_server


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.fixture
def served():
    m = PipelineMetrics()
    port = start_metrics_server(0, metrics=m)
    try:
        yield m, port
    finally:
        stop_metrics_server(port)


def test_scrape_shows_counters_gauges_and_histograms(served):
    m, port = served
    assert port > 0
    m.count("binance", "received", 10)
    m.count("binance", "received", 5)
    m.count("binance", "inserted", 120)
    m.count("sensors", "duplicates", 3)
    m.set_connected("binance", True)
    m.set_connected("sensors", False)
    m.set_buffer_rows(42)
    m.set_dedup_keys("binance", 7)
    m.event_time("binance", int((time.time() - 8) * 1e6))
    m.event_time("binance", int((time.time() - 60) * 1e6))  # older: ignored
    # 0.05 ms, 0.3 ms, 3 ms, 20 s: buckets <=0.1ms, <=0.5ms, <=5ms, +Inf
    m.observe_many("end_to_end", "binance", [0.00005, 0.0003, 0.003, 20.0])
    m.observe_us("exchange_to_receive", "binance", [1_000_000, 1_999_000], 2_000_000)
    m.observe_many("receive_to_parsed", "binance", [-0.5])  # clock skew counts as 0

    s = _scrape(port)
    feed = (("feed", "binance"),)
    assert s[("feedhouse_received_messages_total", feed)] == 15
    assert s[("feedhouse_inserted_rows_total", feed)] == 120
    assert s[("feedhouse_duplicates_total", (("feed", "sensors"),))] == 3
    assert s[("feedhouse_feed_connected", feed)] == 1
    assert s[("feedhouse_feed_connected", (("feed", "sensors"),))] == 0
    assert s[("feedhouse_buffer_rows", (("feed", "all"),))] == 42
    assert s[("feedhouse_dedup_keys", feed)] == 7
    assert 7.5 < s[("feedhouse_consumer_lag_seconds", feed)] < 30

    def bucket(hop, le):
        return s[
            ("feedhouse_latency_seconds_bucket", (("feed", "binance"), ("hop", hop), ("le", le)))
        ]

    assert [bucket("end_to_end", le) for le in ("0.0001", "0.0005", "0.005", "10.0", "+Inf")] == [
        1,
        2,
        3,
        3,
        4,
    ]
    labels = (("feed", "binance"), ("hop", "end_to_end"))
    assert s[("feedhouse_latency_seconds_count", labels)] == 4
    assert s[("feedhouse_latency_seconds_sum", labels)] == pytest.approx(20.00335)
    assert bucket("exchange_to_receive", "0.001") == 1  # 1 ms
    assert bucket("exchange_to_receive", "1.0") == 2  # 1 s
    assert bucket("receive_to_parsed", "0.0001") == 1
    assert ("process_resident_memory_bytes", ()) in s


def test_lag_grows_while_a_feed_is_silent(served):
    m, port = served
    m.event_time("kraken", int((time.time() - 1) * 1e6))
    first = _scrape(port)[("feedhouse_consumer_lag_seconds", (("feed", "kraken"),))]
    time.sleep(0.3)
    second = _scrape(port)[("feedhouse_consumer_lag_seconds", (("feed", "kraken"),))]
    assert second >= first + 0.25


def test_unknown_names_fail_loudly(served):
    m, _ = served
    with pytest.raises(KeyError, match="unknown counter"):
        m.count("binance", "insertd", 1)
    with pytest.raises(KeyError, match="unknown hop"):
        m.observe_many("parse", "binance", [0.1])


def test_module_level_api_feeds_the_process_registry():
    port = start_metrics_server(0)
    try:
        metrics.count("module-feed", "replayed", 9)
        metrics.observe_many("parsed_to_insert_acked", "module-feed", [0.002] * 3)
        s = _scrape(port)
    finally:
        stop_metrics_server(port)
    assert s[("feedhouse_replayed_rows_total", (("feed", "module-feed"),))] == 9
    labels = (("feed", "module-feed"), ("hop", "parsed_to_insert_acked"))
    assert s[("feedhouse_latency_seconds_count", labels)] == 3
    assert len(BUCKETS) == 16 and BUCKETS[0] == 0.0001 and BUCKETS[-1] == 10.0


def test_mqtt_subscribers_drive_the_connected_gauge_and_resubscribe_on_every_connect():
    from types import SimpleNamespace
    from unittest import mock

    from dataflows.sources.mqtt import Subscriber
    from feedhouse.core.settings import MqttSettings

    settings = MqttSettings(clients=2)
    subs = [Subscriber("mqtt-gauge", settings, f"gauge-{i}", i) for i in range(2)]
    client, ok = mock.Mock(), SimpleNamespace(is_failure=False)
    port = start_metrics_server(0)

    def connected() -> float:
        return _scrape(port)[("feedhouse_feed_connected", (("feed", "mqtt-gauge"),))]

    def connect(sub, session_present: bool) -> None:
        sub._on_connect(client, None, SimpleNamespace(session_present=session_present), ok, None)

    try:
        assert connected() == 0  # connecting
        connect(subs[0], False)
        assert connected() == 0  # one subscriber of two
        connect(subs[1], False)
        assert connected() == 1
        subs[1]._on_disconnect(client, None, None, ok, None)
        assert connected() == 0  # FeedDisconnected fires for MQTT feeds too
        connect(subs[1], True)
        assert connected() == 1
    finally:
        stop_metrics_server(port)
    # the broker kept the session, yet the subscriber subscribed again (heals a lost one)
    assert client.subscribe.call_count == 3

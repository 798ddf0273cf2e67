"""MQTT payload parser: every payload format, field mapping, and each kind of bad payload."""

from __future__ import annotations

import orjson
import pytest

from dataflows.frames import MessageBatch
from dataflows.parse.reading_fields import compile_template
from dataflows.parse.readings import parse_readings, reading_parser
from feedhouse.core.records import Reading, validate_readings
from feedhouse.core.settings import FeedSettings

TS_US = 1_763_700_000_123_456
RECV = 1_763_700_001_000_000
TOPIC = "plant/site1/dev00042/temperature"


def feed(**mqtt) -> FeedSettings:
    return FeedSettings(name="plant", kind="mqtt", mqtt=mqtt)


def parse(payload, topic=TOPIC, **mqtt):
    if isinstance(payload, dict | list):
        payload = orjson.dumps(payload)
    return reading_parser(feed(**mqtt))(payload, RECV, topic)


def test_json_object_takes_device_sensor_site_from_topic_and_unit_from_settings():
    result = parse({"seq": 7, "value": 21.5, "ts": TS_US})
    assert result.readings == [
        Reading("dev00042", "temperature", 7, 21.5, "C", TS_US, RECV, "site1")
    ]
    assert not result.invalid and result.ignored == 0
    validate_readings(result.readings)  # the contract agrees


def test_json_array_gives_one_reading_per_element_and_dead_letters_bad_elements():
    result = parse(
        [
            {"seq": 1, "value": 1.0, "ts": TS_US},
            {"seq": 2, "ts": TS_US},
            5,
            {"seq": 3, "value": 3, "ts": TS_US, "unit": "K"},
        ],
        payload_format="json_array",
    )
    assert [(r.seq, r.value, r.unit) for r in result.readings] == [(1, 1.0, "C"), (3, 3.0, "K")]
    reasons = [i.reason for i in result.invalid]
    assert reasons == [
        f"value is missing (topic {TOPIC})",
        f"array element is not an object (topic {TOPIC})",
    ]
    assert orjson.loads(result.invalid[0].raw) == {"seq": 2, "ts": TS_US}  # the element


def test_line_protocol_key_value_pairs_one_reading_per_line():
    payload = (
        b"seq=10 value=1013.2 ts=2025-11-21T05:20:00.123456Z\nseq=11,value=1013.4,ts=1763702400"
    )
    result = parse(payload, topic="plant/s2/d1/pressure", payload_format="line")
    assert [(r.seq, r.value, r.unit, r.site) for r in result.readings] == [
        (10, 1013.2, "hPa", "s2"),
        (11, 1013.4, "hPa", "s2"),
    ]
    assert result.readings[0].device_ts == 1_763_702_400_123_456
    assert result.readings[1].device_ts == 1_763_702_400_000_000


def test_field_map_template_and_device_ts_dedup_key():
    result = parse(
        {"id": "pump-7", "kind": "current", "v": 12.5, "time": TS_US // 1000},
        topic="factory/hall-3/telemetry",
        topic_template="factory/{site}/{_}",
        field_map={"device_id": "id", "sensor": "kind", "value": "v", "device_ts": "time"},
        dedup_key="device_ts",
    )
    assert result.readings == [
        Reading("pump-7", "current", 0, 12.5, "A", TS_US // 1000 * 1000, RECV, "hall-3")
    ]


@pytest.mark.parametrize(
    ("seconds_like", "unit", "expected"),
    [
        (1_763_700_000, "auto", 1_763_700_000_000_000),
        (1_763_700_000_123, "auto", 1_763_700_000_123_000),
        (TS_US, "auto", TS_US),
        (TS_US * 1000 + 999, "auto", TS_US + 1),
        (1_763_700_000.5, "s", 1_763_700_000_500_000),
        ("2025-11-21T04:40:00Z", "iso", 1_763_700_000_000_000),
    ],
)
def test_device_timestamp_units(seconds_like, unit, expected):
    result = parse({"seq": 1, "value": 1, "ts": seconds_like}, ts_unit=unit)
    assert [r.device_ts for r in result.readings] == [expected]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "payload is not JSON"),
        (b"[1, 2]", "payload is JSON list, expected an object"),
        (b"\xff\xfe\x00", "payload is not JSON"),
        ({"value": 1.0, "ts": TS_US}, "seq is missing"),
        ({"seq": -1, "value": 1.0, "ts": TS_US}, "seq -1 out of range"),
        ({"seq": "x1", "value": 1.0, "ts": TS_US}, "seq is not an integer"),
        ({"seq": True, "value": 1.0, "ts": TS_US}, "seq is not an integer"),
        ({"seq": 1, "value": "hot", "ts": TS_US}, "value is not a number"),
        ({"seq": 1, "value": None, "ts": TS_US}, "value is not a number"),
        ({"seq": 1, "ts": TS_US}, "value is missing"),
        ({"seq": 1, "value": 1.0}, "device_ts is missing"),
        ({"seq": 1, "value": 1.0, "ts": "yesterday"}, "'yesterday' is not a timestamp"),
        ({"seq": 1, "value": 1.0, "ts": -5}, "out of range"),
        ({"seq": 1, "value": 1.0, "ts": TS_US, "unit": "x" * 40}, "unit is not a short text"),
    ],
)
def test_malformed_json_payloads_are_invalid_with_a_reason(payload, reason):
    result = parse(payload)
    assert not result.readings
    assert len(result.invalid) == 1
    assert reason in result.invalid[0].reason
    assert result.invalid[0].reason.endswith(f"(topic {TOPIC})")


def test_non_finite_values_and_binary_payloads_keep_their_raw_text():
    assert "number is infinity" in parse(b'{"seq": 1, "value": 1e999, "ts": 1}').invalid[0].reason
    result = parse(b"seq=1 value=nan ts=1763700000", payload_format="line")
    assert "value is not finite" in result.invalid[0].reason
    binary = parse(b"\x00\xff", payload_format="line")
    assert binary.invalid[0].raw == "base64:AP8="


def test_topic_not_matching_the_template_is_invalid():
    result = parse({"seq": 1, "value": 1, "ts": TS_US}, topic="plant/site1/dev1")
    assert "does not match template" in result.invalid[0].reason
    other = parse({"seq": 1, "value": 1, "ts": TS_US}, topic="farm/site1/dev1/temperature")
    assert "does not match template" in other.invalid[0].reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"seq=1 value=2 ts", "line pair 'ts' is not key=value"),
        (b"seq=1 value=warm ts=1763700000", "value 'warm' is not a number"),
        (b"seq=a value=1 ts=1763700000", "seq is not an integer"),
    ],
)
def test_malformed_line_payloads(payload, reason):
    result = parse(payload, payload_format="line")
    assert not result.readings
    assert reason in result.invalid[0].reason


def test_empty_payloads_are_ignored_not_dead_lettered():
    assert parse(b"", payload_format="line").ignored == 1
    assert parse(b"[]", payload_format="json_array").ignored == 1


def test_inline_checks_accept_only_what_the_contract_accepts():
    long_id = "d" * 129
    result = parse(
        {"seq": 1, "value": 1, "ts": TS_US, "device_id": long_id},
        topic="x/temperature",
        topic_template="x/{sensor}",
    )
    assert "device_id longer than 128" in result.invalid[0].reason
    good = parse(
        {"seq": 2**64 - 1, "value": -0.0, "ts": 1, "device_id": "d"},
        topic="x/s",
        topic_template="x/{sensor}",
    )
    assert validate_readings(good.readings)[0].seq == 2**64 - 1


def test_compile_template_names_levels():
    match = compile_template("plant/{site}/{device_id}/{sensor}")
    assert match("plant/a/b/c") == {"site": "a", "device_id": "b", "sensor": "c"}


def test_parse_readings_over_a_micro_batch():
    msgs = [(RECV, orjson.dumps({"seq": i, "value": i, "ts": TS_US + i})) for i in range(3)]
    msgs.append((RECV, b"oops"))
    batch = MessageBatch("plant", "mqtt", "feedhouse-0", 100, msgs, [], [TOPIC] * 4)
    result = parse_readings(batch, feed())
    assert [r.seq for r in result.readings] == [0, 1, 2]
    assert [i.raw for i in result.invalid] == ["oops"]
    validate_readings(result.readings)


def test_subscriptions_shared_or_static_slices():
    from dataflows.sources.mqtt_client import subscriptions
    from feedhouse.core.config import load_settings
    from feedhouse.core.errors import SettingsError
    from feedhouse.core.settings import MqttSettings

    shared = MqttSettings(topics=["a/#", "b/#"], clients=2)
    assert subscriptions(shared, 1) == ["$share/feedhouse/a/#", "$share/feedhouse/b/#"]
    static = MqttSettings(share_group="", topics=["s0/#", "s1/#", "s2/#"], clients=2)
    assert [subscriptions(static, i) for i in range(2)] == [["s0/#", "s2/#"], ["s1/#"]]
    with pytest.raises(SettingsError, match="at least one topic filter per client"):
        load_settings(feeds=[{"name": "m", "kind": "mqtt",
                              "mqtt": {"share_group": "", "topics": ["x/#"], "clients": 2}}])


# --- a micro-batch at once (parse_columns): the same readings and reasons as one by one ---

GOOD = [{"seq": i, "value": 20 + i / 8, "ts": TS_US + i, "unit": "C" if i % 2 else ""}
        for i in range(6)]
BAD = [b"{not json", {"seq": -1, "value": 1.0, "ts": TS_US}, {"seq": 1, "value": "hot", "ts": 1},
       {"seq": 1, "value": 1.0}, b'{"seq": 18446744073709551616, "value": 1.0, "ts": 1}', b"",
       b'{"seq": 1, "value": 1.0, "ts": 1763700000123456000000}',
       {"seq": 1, "value": 1, "ts": "yesterday"}, {"seq": 1, "value": 1.0, "ts": 1763700000}]


def _one_by_one(parser, messages, topics):
    readings, reasons, outcomes = [], [], []
    for (received, payload), topic in zip(messages, topics, strict=True):
        result = parser(payload, received, topic)
        readings += result.readings
        reasons += [bad.reason for bad in result.invalid]
        outcomes.append("with_records" if result.readings
                        else "invalid" if result.invalid else "ignored")
    return readings, reasons, outcomes


@pytest.mark.parametrize("fmt", ["json", "json_array"])
@pytest.mark.parametrize("with_bad", [False, True])
def test_batch_parse_gives_what_one_by_one_gives(fmt, with_bad):
    parser = reading_parser(feed(payload_format=fmt))
    payloads = [orjson.dumps(g) for g in GOOD]
    if fmt == "json_array":
        payloads += [orjson.dumps(GOOD[:3]), orjson.dumps([GOOD[4]])]
    if with_bad:
        payloads[2:2] = [b if isinstance(b, bytes) else orjson.dumps(b) for b in BAD]
    topics = [TOPIC if i % 3 else "plant/site2/dev7/humidity" for i in range(len(payloads))]
    if with_bad:
        topics[1] = "plant/site1/too/many/levels"
    messages = [(RECV + i, p) for i, p in enumerate(payloads)]
    batch = parser.parse_columns(messages, topics)
    readings, reasons, outcomes = _one_by_one(parser, messages, topics)
    assert list(batch.readings) == readings and len(readings) >= len(GOOD)
    assert [bad.reason for _, bad in batch.invalid] == reasons
    assert batch.outcomes == outcomes
    assert bool(reasons) == with_bad
    validate_readings(list(batch.readings))


def test_batch_columns_feed_the_arrow_insert_table():
    from dataflows.sink.batches import READINGS, READINGS_SCHEMA, rows_table

    parser = reading_parser(feed())
    messages = [(RECV, orjson.dumps(g)) for g in GOOD]
    assert parser._fast_columns(messages, [TOPIC] * len(GOOD)) is not None  # typed path
    cols = parser.parse_columns(messages, [TOPIC] * len(GOOD)).readings
    assert cols.to_arrow(READINGS_SCHEMA, "plant").equals(
        rows_table(READINGS, list(cols), {"feed": "plant"}))
    assert [r.unit for r in cols] == ["C"] * len(GOOD)  # "" took the sensor's unit

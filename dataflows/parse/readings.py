"""MQTT payloads -> `Reading`s: topic template, payload format, field names, units.

Per feed (`feed.mqtt`):
- `topic_template` names fields by topic level, e.g. `plant/{site}/{device_id}/{sensor}`
  (`{_}` skips a level). Fields the topic names win over the payload's.
- `payload_format`: `json` (one object), `json_array` (a list of objects), or `line`
  (`key=value` pairs separated by spaces or commas, one reading per line).
- `field_map`: reading field -> payload key where devices use other names
  (defaults: device_id, sensor, seq, value, unit, ts -> device_ts, site).
- `units`: unit per sensor where the payload carries none.
- `dedup_key`: `seq` needs a sequence number; `device_ts` lets devices omit it (seq 0).

Every reading is checked against the `iot.readings` contract with cheap inline checks
(the same rules as `feedhouse.core.records.ReadingModel`; a test keeps the two in step), so
pydantic stays off the hot path. Anything that fails becomes `Invalid(raw, reason)`.
"""

from __future__ import annotations

import base64
from array import array
from collections.abc import Sequence
from operator import attrgetter
from typing import Annotated, Any, NamedTuple

import msgspec
import numpy as np
import orjson

from dataflows.frames import MessageBatch
from dataflows.parse.columns import ReadingColumns
from dataflows.parse.reading_fields import (
    DEFAULT_FIELDS,
    LINE_SPLIT,
    MAX_TS_US,
    MAX_UNIT,
    TOPIC_CACHE,
    US_FROM,
    BadReading,
    compile_template,
    field_name,
    reading_value,
    seq_value,
    ts_us,
)
from feedhouse.core.records import Invalid, ParseResult, Reading
from feedhouse.core.settings import FeedSettings, MqttSettings


def raw_text(payload: bytes | str) -> str:
    """Payload as dead-letter text: UTF-8 when it is, else `base64:<...>`."""
    if isinstance(payload, str):
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()


# --- the parser ---------------------------------------------------------------------


class BatchReadings(NamedTuple):
    """A micro-batch parsed at once (`ReadingParser.parse_columns`)."""

    readings: ReadingColumns
    outcomes: list[str]  # per message: with_records | invalid | ignored
    invalid: list[tuple[int, Invalid]]  # (message index, dead letter)


class ReadingParser:
    """Parses one feed's messages; `parser(payload, received_ts, topic) -> ParseResult`
    for one message, `parser.parse_columns(messages, topics)` for a micro-batch."""

    def __init__(self, mqtt: MqttSettings) -> None:
        self.topic_fields = compile_template(mqtt.topic_template)
        keys = {**DEFAULT_FIELDS, **mqtt.field_map}
        self.k_device, self.k_sensor, self.k_seq = keys["device_id"], keys["sensor"], keys["seq"]
        self.k_value, self.k_unit, self.k_ts = keys["value"], keys["unit"], keys["device_ts"]
        self.k_site = keys["site"]
        self.units = mqtt.units
        self.ts_unit = mqtt.ts_unit
        self.need_seq = mqtt.dedup_key == "seq"
        self.textual = mqtt.payload_format == "line"  # values arrive as text
        self.array = mqtt.payload_format == "json_array"
        self.objects = {
            "json": self._json_object,
            "json_array": self._json_array,
            "line": self._lines,
        }[mqtt.payload_format]
        self.template_names = _template_names(mqtt.topic_template)
        self._decode = _fast_decoder(mqtt, keys, self.template_names)
        self._names: dict[str, tuple[str, str, str] | None] = {}  # topic -> names

    # --- a micro-batch at once ----------------------------------------------------------
    def parse_columns(self, messages: Sequence[tuple[int, bytes | str]],
                      topics: Sequence[str]) -> BatchReadings:
        """Every message of a micro-batch -> readings as columns, with the same rules and
        dead-letter reasons as one by one (`__call__`).

        Fast path (profiled: the per-message cost of the MQTT ingest): JSON payloads are
        decoded by msgspec straight into a typed struct, which already enforces the types
        the contract asks for (an integer seq >= 0, a finite number value, an integer
        device_ts, a unit of at most 32 characters); device, sensor and site come from the
        per-topic cache; the columns are built with one comprehension each. Anything the
        typed decode refuses, and any batch holding such a message, takes the one-by-one
        path, which gives the exact reason: the fast path only ever accepts payloads the
        one-by-one parser accepts, with the same values.
        """
        n = len(messages)
        fast = self._fast_columns(messages, topics) if self._decode is not None and n else None
        if fast is not None:
            return BatchReadings(fast, ["with_records"] * n, [])
        rows: list[Reading] = []
        outcomes: list[str] = []
        invalid: list[tuple[int, Invalid]] = []
        for i, ((received_ts, payload), topic) in enumerate(zip(messages, topics, strict=True)):
            result = self(payload, received_ts, topic)
            if result.readings:
                outcomes.append("with_records")
                rows.extend(result.readings)
            else:
                outcomes.append("invalid" if result.invalid else "ignored")
            invalid.extend((i, bad) for bad in result.invalid)
        return BatchReadings(ReadingColumns.from_rows(rows), outcomes, invalid)

    def _topic_names(self, topic: str) -> tuple[str, str, str] | None:
        """(device_id, sensor, site) named by a topic; None: the topic needs the
        one-by-one path (no match, a name out of the contract's bounds)."""
        try:
            names = self._names[topic]
        except KeyError:
            try:
                fields = self.topic_fields(topic)
                names = (field_name(fields.get("device_id"), "device_id"),
                         field_name(fields.get("sensor"), "sensor"), fields.get("site") or "")
            except BadReading:
                names = None
            if len(self._names) < TOPIC_CACHE:
                self._names[topic] = names
        return names

    def _fast_columns(self, messages, topics) -> ReadingColumns | None:
        decode = self._decode
        try:
            objs = [decode(payload) for _, payload in messages]
        except msgspec.DecodeError:  # also ValidationError: the one-by-one path says why
            return None
        names = [self._topic_names(t) for t in topics]
        if None in names:
            return None
        received = [m[0] for m in messages]
        if self.array:  # json_array: a list or a lone object
            counts = [len(o) if type(o) is list else 1 for o in objs]
            if 0 in counts:
                return None  # an empty array is ignored, not a reading
            if any(type(o) is list for o in objs):
                objs = [x for o in objs for x in (o if type(o) is list else (o,))]
                names = [nm for nm, c in zip(names, counts, strict=True) for _ in range(c)]
                received = [r for r, c in zip(received, counts, strict=True) for _ in range(c)]
        # array.array converts a list of ints in C (np.array took ~10x as long per value
        # for 16-digit timestamps) and raises OverflowError beyond the type: seq above
        # 2**64-1, a device_ts beyond int64 - those batches take the one-by-one path
        ts_list = list(map(_TS_OF, objs))
        try:
            seq = np.frombuffer(array("Q", list(map(_SEQ, objs))), dtype=np.uint64)
            ts = np.frombuffer(array("q", ts_list), dtype=np.int64)
            received_ts = np.frombuffer(array("q", received), dtype=np.int64)
        except OverflowError:
            return None
        if self.ts_unit not in ("auto", "us") or not (
            (ts >= US_FROM).all() and (ts < MAX_TS_US).all()
        ):
            try:
                ts = np.array([ts_us(v, self.ts_unit) for v in ts_list], dtype=np.int64)
            except BadReading:
                return None
        device = [nm[0] for nm in names]
        sensor = [nm[1] for nm in names]
        unit = list(map(_UNIT, objs))
        if "" in unit:
            units = self.units
            unit = [u or units.get(s, "") for u, s in zip(unit, sensor, strict=True)]
            if max(map(len, unit)) > MAX_UNIT:
                return None
        site = [nm[2] or o.site for nm, o in zip(names, objs, strict=True)]
        value = np.array(list(map(_VALUE, objs)), dtype=np.float64)
        if not np.isfinite(value).all():  # msgspec refuses 1e999; kept as a guard
            return None
        return ReadingColumns(device, sensor, seq, value, unit, ts, received_ts, site)

    def __call__(self, payload: bytes | str, received_ts: int, topic: str) -> ParseResult:
        result = ParseResult()
        try:
            from_topic = self.topic_fields(topic)
            objects = self.objects(payload)
        except BadReading as exc:
            result.invalid.append(Invalid(raw_text(payload), f"{exc} (topic {topic})"))
            return result
        if not objects:
            result.ignored += 1
            return result
        for obj in objects:
            try:
                result.readings.append(self._reading(obj, from_topic, received_ts, self.textual))
            except BadReading as exc:
                raw = raw_text(payload) if len(objects) == 1 else _one_raw(obj)
                result.invalid.append(Invalid(raw, f"{exc} (topic {topic})"))
        return result

    # payload formats -> list of field dicts
    def _json_object(self, payload: bytes | str) -> list[dict]:
        obj = _loads(payload)
        if not isinstance(obj, dict):
            raise BadReading(f"payload is JSON {type(obj).__name__}, expected an object")
        return [obj]

    def _json_array(self, payload: bytes | str) -> list[dict]:
        obj = _loads(payload)
        if isinstance(obj, dict):  # a lone reading is accepted as a list of one
            return [obj]
        if not isinstance(obj, list):
            raise BadReading(f"payload is JSON {type(obj).__name__}, expected an array")
        return [o if isinstance(o, dict) else {"\x00bad": o} for o in obj]

    def _lines(self, payload: bytes | str) -> list[dict]:
        try:
            text = payload.decode() if isinstance(payload, bytes) else payload
        except UnicodeDecodeError:
            raise BadReading("payload is not UTF-8 text") from None
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            fields = {}
            for pair in LINE_SPLIT.split(line.strip()):
                key, eq, value = pair.partition("=")
                if not eq or not key:
                    raise BadReading(f"line pair {pair[:40]!r} is not key=value")
                fields[key] = value
            out.append(fields)
        return out

    def _reading(self, obj: dict, topic: dict, received_ts: int, textual: bool) -> Reading:
        if "\x00bad" in obj:
            raise BadReading("array element is not an object")
        device = field_name(topic.get("device_id") or obj.get(self.k_device), "device_id")
        sensor = field_name(topic.get("sensor") or obj.get(self.k_sensor), "sensor")
        seq_raw = obj.get(self.k_seq)
        if seq_raw is None:
            if self.need_seq:
                raise BadReading("seq is missing")
            seq = 0
        else:
            seq = seq_value(seq_raw)
        if self.k_value not in obj:
            raise BadReading("value is missing")
        value = reading_value(obj[self.k_value], textual)
        unit = obj.get(self.k_unit) or self.units.get(sensor, "")
        if not isinstance(unit, str) or len(unit) > MAX_UNIT:
            raise BadReading("unit is not a short text")
        ts_raw = obj.get(self.k_ts)
        if ts_raw is None:
            raise BadReading("device_ts is missing")
        device_ts = ts_us(ts_raw, self.ts_unit)
        if not 0 < device_ts < MAX_TS_US:
            raise BadReading(f"device_ts {device_ts} out of range")
        site = topic.get("site") or obj.get(self.k_site) or ""
        if not isinstance(site, str):
            site = str(site)
        return Reading(device, sensor, seq, value, unit, device_ts, received_ts, site)


def _loads(payload: bytes | str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadReading(f"payload is not JSON: {str(exc).split(':')[0]}") from None


def _one_raw(obj: dict) -> str:
    return orjson.dumps(obj.get("\x00bad", obj), default=str).decode()


_SEQ, _VALUE, _TS_OF, _UNIT = (attrgetter(f) for f in ("seq", "value", "ts", "unit"))


def _template_names(template: str) -> set[str]:
    return {lvl[1:-1] for lvl in template.split("/") if lvl.startswith("{")}


def _fast_decoder(mqtt: MqttSettings, keys: dict[str, str], named: set[str]):
    """A msgspec decoder of one payload into a typed sample (json / json_array), or None
    where the fast path does not apply (line payloads; device or sensor not in the topic
    template; field names that collide)."""
    if mqtt.payload_format == "line" or not {"device_id", "sensor"} <= named:
        return None
    seq_type = Annotated[int, msgspec.Meta(ge=0)]
    fields: list = [("seq", seq_type) if mqtt.dedup_key == "seq" else ("seq", seq_type, 0),
                    ("value", float), ("ts", int),
                    ("unit", Annotated[str, msgspec.Meta(max_length=MAX_UNIT)], ""),
                    ("site", str, "")]
    rename = {"seq": keys["seq"], "value": keys["value"], "ts": keys["device_ts"],
              "unit": keys["unit"], "site": keys["site"]}
    if len(set(rename.values())) != len(rename):
        return None
    try:
        sample = msgspec.defstruct("Sample", fields, rename=rename)
    except (TypeError, ValueError):
        return None
    kind = sample if mqtt.payload_format == "json" else sample | list[sample]
    return msgspec.json.Decoder(kind).decode


def reading_parser(feed: FeedSettings) -> ReadingParser:
    """The per-message parser of an MQTT feed (what `dataflows.parse.stage.parse_batch` calls)."""
    assert feed.mqtt is not None, f"feed {feed.name} is not an MQTT feed"
    return ReadingParser(feed.mqtt)


def parse_readings(batch: MessageBatch, feed: FeedSettings) -> ParseResult:
    """Every message of an MQTT micro-batch -> readings, invalid (with reasons), ignored."""
    parse = reading_parser(feed)
    topics = batch.topics or [""] * len(batch.messages)
    result = ParseResult()
    for (received_ts, payload), topic in zip(batch.messages, topics, strict=True):
        result.extend(parse(payload, received_ts, topic))
    return result

"""How a reading's fields are read: topic templates into named levels, and timestamps,
sequence numbers, values and names converted by the contract's rules (each raises
BadReading with the reason the dead letter keeps)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from feedhouse.core.records import us_from_iso

DEFAULT_FIELDS = {
    "device_id": "device_id",
    "sensor": "sensor",
    "seq": "seq",
    "value": "value",
    "unit": "unit",
    "device_ts": "ts",
    "site": "site",
}
MAX_NAME = 128
MAX_UNIT = 32
MAX_SEQ = 2**64 - 1
MAX_TS_US = 10_413_792_000_000_000  # 2300-01-01: past DateTime64(6)'s range
LINE_SPLIT = re.compile(r"[,\s]+")
TOPIC_CACHE = 100_000  # topics whose fields are kept (one per device and sensor)
US_FROM = 10**14  # `auto` reads integers from here up as µs


class BadReading(ValueError):
    """A payload or one reading in it breaks the contract (the message is the reason)."""



# --- topic template -----------------------------------------------------------------------


def compile_template(template: str) -> Callable[[str], dict[str, str]]:
    """`plant/{site}/{device_id}/{sensor}` -> function(topic) -> {field: level}."""
    levels = template.split("/")
    named = [(i, lvl[1:-1]) for i, lvl in enumerate(levels) if lvl.startswith("{")]
    literal = [(i, lvl) for i, lvl in enumerate(levels) if not lvl.startswith("{")]
    n = len(levels)

    cache: dict[str, dict[str, str]] = {}  # devices publish on the same topics again

    def match(topic: str) -> dict[str, str]:
        """The topic's fields (a shared dict: read it, never change it)."""
        fields = cache.get(topic)
        if fields is not None:
            return fields
        parts = topic.split("/")
        if len(parts) != n or any(parts[i] != lvl for i, lvl in literal):
            raise BadReading(f"topic does not match template {template!r}")
        fields = {name: parts[i] for i, name in named if name != "_"}
        if len(cache) < TOPIC_CACHE:
            cache[topic] = fields
        return fields

    return match


# --- field conversions ----------------------------------------------------------------


MAX_TS_US = 10**16  # year 2286, as for exchange times


def ts_us(value: Any, unit: str) -> int:
    if type(value) is int and unit in ("auto", "us") and US_FROM <= value < MAX_TS_US:
        return value  # the common case, as below: µs by magnitude, in range
    if isinstance(value, bool) or value is None:
        raise BadReading("device_ts is not a timestamp")
    if isinstance(value, str):
        text = value.strip()
        if unit == "iso" or (unit == "auto" and not is_number(text)):
            try:
                return us_from_iso(text)
            except ValueError:
                raise BadReading(f"device_ts {text[:40]!r} is not a timestamp") from None
        try:  # 'inf'/'nan' pass _is_number but are no integer
            value = float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            raise BadReading(f"device_ts {text[:40]!r} is not a timestamp") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise BadReading("device_ts is not a timestamp")
    if unit == "auto":  # by magnitude: seconds, ms, µs or ns since the epoch
        mag = abs(value)
        unit = "s" if mag < 1e11 else "ms" if mag < US_FROM else "us" if mag < 1e17 else "ns"
    scale = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}.get(unit)
    if scale is None:
        raise BadReading("device_ts is a number but ts_unit is iso")
    us = int(round(value * scale))
    if not 0 < us < MAX_TS_US:  # fuzzed magnitudes must not reach int64 columns
        raise BadReading(f"device_ts {value!r} out of range")
    return us


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def seq_value(value: Any) -> int:
    if type(value) is int and 0 <= value <= MAX_SEQ:
        return value
    if isinstance(value, bool):
        raise BadReading("seq is not an integer")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise BadReading("seq is not an integer")
    if not 0 <= value <= MAX_SEQ:
        raise BadReading(f"seq {value} out of range")
    return value


def reading_value(value: Any, textual: bool) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    if textual and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadReading(f"value {value[:40]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadReading("value is not a number")
    value = float(value)
    if not math.isfinite(value):
        raise BadReading("value is not finite")
    return value


def field_name(value: Any, field: str) -> str:
    if type(value) is str and 0 < len(value) <= MAX_NAME:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise BadReading(f"{field} is missing")
    if len(value) > MAX_NAME:
        raise BadReading(f"{field} longer than {MAX_NAME} characters")
    return value

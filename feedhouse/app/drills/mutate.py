"""Deterministic mutations of real messages, for the fuzz drill (no `register`: a helper).

`mutate(frame, rng)` returns one mutated copy of a WebSocket frame or MQTT payload:
truncation, characters or bytes spliced in, a JSON value replaced by another type, a
key deleted, two sibling values swapped, a numeric string garbled, or a whole random
payload. Binary frames (HTX gzip) get byte-level mutations. Same rng seed, same output.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

JSON_MAX = 20_000  # bigger frames (book snapshots) get textual mutations only
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**64, -(2**63) - 1, 1e308, -0.0, "", "nan", "inf", "-inf",
    "1e400", "NaN", "buy", "sell", "x", "0x1f", "12,5", " 1 ", "9" * 40, [], {}, [1, 2],
    {"a": 1}, "2021-13-45T25:61:61Z", "\u0000", "\ud7ff\ue000", "💥",
]
SPLICE = ['"', "{", "}", "[", "]", ",", ":", "\\", "\x00", "null", "1e999", "💥", " ", "\t"]


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _parent(obj: Any, path: tuple) -> Any:
    for step in path[:-1]:
        obj = obj[step]
    return obj


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 2 else 4)
    if kind == 0:
        return rng.choice(ODD_VALUES)
    if kind == 1:
        return rng.randint(-(2**70), 2**70)
    if kind == 2:
        return rng.uniform(-1e12, 1e12)
    if kind == 3:
        return "".join(rng.choice("abcxyz019-_.:/ ") for _ in range(rng.randrange(12)))
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(rng.randrange(100)): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _mutate_json(obj: Any, rng: random.Random) -> str | None:
    """One structural mutation of parsed JSON; None when it does not apply."""
    path = rng.choice(_paths(obj))
    op = rng.randrange(4)
    if not path:  # the root: a whole random payload instead
        obj = random_json(rng)
    else:
        parent, key = _parent(obj, path), path[-1]
        if op == 0:  # replace a value by one of another type
            parent[key] = rng.choice(ODD_VALUES)
        elif op == 1:  # delete a key / an element
            del parent[key]
        elif op == 2:  # swap two siblings
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            if len(keys) < 2:
                return None
            other = rng.choice(keys)
            parent[key], parent[other] = parent[other], parent[key]
        else:  # garble a number or a numeric string
            value = parent[key]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return None
            text = str(value)
            i = rng.randrange(len(text) + 1)
            parent[key] = text[:i] + rng.choice("-.e9x ") + text[i:]
    try:
        return orjson.dumps(obj).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
        return None


def _mutate_text(text: str, rng: random.Random) -> str:
    op = rng.randrange(3)
    if op == 0 or not text:  # truncate
        return text[: rng.randrange(len(text) + 1)]
    i = rng.randrange(len(text) + 1)
    if op == 1:  # splice
        return text[:i] + rng.choice(SPLICE) + text[i:]
    j = min(len(text), i + rng.randrange(1, 8))  # cut a piece out
    return text[:i] + text[j:]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    op = rng.randrange(3)
    if op == 0 or not buf:
        return bytes(buf[: rng.randrange(len(buf) + 1)])
    if op == 1:
        for _ in range(rng.randrange(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    return bytes(buf) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))


def mutate(frame: str | bytes, rng: random.Random) -> str | bytes:
    """One mutated copy of `frame` (see the module doc)."""
    if isinstance(frame, bytes):
        return _mutate_bytes(frame, rng)
    if rng.random() < 0.6 and len(frame) <= JSON_MAX:
        try:
            obj = orjson.loads(frame)
        except orjson.JSONDecodeError:
            obj = None
        if obj is not None:
            out = _mutate_json(obj, rng)
            if out is not None:
                return out
    return _mutate_text(frame, rng)

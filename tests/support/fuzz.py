"""Fuzzing venue parsers: seed frames from captures, one set of mutation strategies, and
what a fuzzed parser may answer (Invalid with a declared reason, never a hidden crash).

Mutations: structural (decode a frame, then replace a value at any depth by another JSON
value, delete it, or swap it with a sibling; replace the whole document) and textual
(truncate, overwrite a few bytes, splice junk bytes in, or random bytes). HTX's gzip
frames are decompressed for structural mutations and recompressed; textual mutations
corrupt the gzip itself.
"""

from __future__ import annotations

import gzip
import json
import zlib

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dataflows.sources.capture import parse_capture, read_capture
from dataflows.venues import get_venue
from feedhouse.core.records import ParseResult
from tests.support.paths import corpus

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PER_KIND = 6  # frames kept per message shape: small seeds, every shape represented

SPECIAL = st.sampled_from(
    ["", "0", "-1", "nan", "inf", "-inf", "1e400", "1e999", "1.5", "buy", "sell", "b", "s",
     "Buy", "Sell", "te", "tu", "hb", "trade", "match", "aggTrade", "BTCUSDT", "XBT/USD",
     "1618678142.5", "x" * 200, "9999-12-31T23:59:59.999Z", "2021-07-22T22:36:10Z"]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | SPECIAL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))  # stdlib: writes integers beyond 64 bits


def _text(frame: str | bytes) -> bytes:
    """A frame's JSON text: gzip frames (HTX) decompressed."""
    return zlib.decompress(frame, 31) if isinstance(frame, bytes) else frame.encode()


def _shape(frame: str | bytes) -> str:
    try:
        msg = orjson.loads(_text(frame))
    except (orjson.JSONDecodeError, zlib.error):
        return "text"
    if isinstance(msg, dict):
        tag = msg.get("type") or msg.get("table") or msg.get("channel") or msg.get("ch")
        if isinstance(msg.get("params"), dict):
            tag = str(msg["params"].get("channel", ""))[:6]
        if isinstance(msg.get("arg"), dict):
            tag = msg["arg"].get("channel")
        return f"{sorted(msg)}:{str(tag)[:20]}"
    if isinstance(msg, list):  # Bitfinex, Kraken v1: the strings name the message
        return "list:" + ",".join(v[:20] for v in msg if isinstance(v, str))
    return type(msg).__name__


def holds_records(result: ParseResult) -> bool:
    return bool(result.trades or result.quotes)


def seeds(venue: str, captures: list[str]) -> list[str | bytes]:
    """Received frames of the captures, PER_KIND of each shape (shortest first); frames
    holding trades or quotes are what matters: weighted 4x."""
    by_shape: dict[str, list] = {}
    for name in captures:
        parse_capture(corpus(name))  # Bitfinex: learn the capture's channel ids
        for event in read_capture(corpus(name)):
            if event.kind == "received":
                by_shape.setdefault(_shape(event.data), []).append(event.data)
    kept = [f for frames in by_shape.values() for f in sorted(frames, key=len)[:PER_KIND]]
    parse = get_venue(venue).parse
    return [f for f in kept for _ in range(4 if holds_records(parse(f, 1)) else 1)]


def _paths(node, prefix=()):
    """Every (container path, key) in a decoded JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix, key
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:4]):
            yield prefix, index
            yield from _paths(value, (*prefix, index))


def structural(data, frame: str | bytes) -> str | bytes:
    """Decode a frame; replace, delete or swap one value at any depth (or the whole
    document); encode it again."""
    binary = isinstance(frame, bytes)
    try:
        doc = orjson.loads(_text(frame))
    except (orjson.JSONDecodeError, zlib.error):  # not JSON to begin with (OKX "pong")
        return frame[::-1]
    spots = [None, *_paths(doc)]
    spot = data.draw(st.sampled_from(spots))
    if spot is None:
        doc = data.draw(JSON)
    else:
        path, key = spot
        parent = doc
        for step in path:
            parent = parent[step]
        op = data.draw(st.sampled_from(["replace", "delete", "swap"]))
        if op == "delete":
            del parent[key]
        elif op == "swap":
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            other = data.draw(st.sampled_from(keys))
            parent[key], parent[other] = parent[other], parent[key]
        else:
            parent[key] = data.draw(JSON)
    out = dumps(doc)
    return gzip.compress(out.encode()) if binary else out


def textual(data, frame: str | bytes) -> str | bytes:
    """Truncate a frame, overwrite or splice in some bytes, or replace it with random
    bytes; text frames come out as bytes or as text (undecodable bytes replaced)."""
    raw = frame if isinstance(frame, bytes) else frame.encode()
    how = data.draw(st.sampled_from(["truncate", "noise", "splice", "random"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif how == "noise":
        noisy = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            if noisy:
                noisy[data.draw(st.integers(0, len(noisy) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(noisy)
    elif how == "splice":
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    else:
        raw = data.draw(st.binary(max_size=64))
    if isinstance(frame, bytes) or data.draw(st.booleans()):
        return raw  # bytes as received (HTX: corrupt or truncated gzip)
    return raw.decode("utf-8", errors="replace")


def mutate(data, frame: str | bytes) -> str | bytes:
    """One mutation of either kind (structural ones three times as often)."""
    kind = data.draw(st.sampled_from([structural, structural, structural, textual]))
    return kind(data, frame)


def assert_declared_error(reason: str) -> None:
    """A venue parser turns bad input into Invalid for the errors bad input causes (not
    JSON, a missing field, too few elements, a bad value, FrameError); anything else
    (a NameError, a RecursionError...) is wrapped as "unexpected" so a live feed keeps
    going, but in a test it is a bug in the parser."""
    assert ": unexpected " not in reason, reason

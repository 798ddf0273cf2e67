"""Property tests for the venue adapters gemini, gateio, bitmex, deribit, huobi, bitget.

Any mutation of a real frame (truncation, byte noise, a field removed or retyped, random
bytes, corrupt gzip for HTX) must come out of `parse` as contract-valid trades/quotes, an
ignored frame or an Invalid with a reason: never an exception, and each frame is
accounted for exactly once.
"""

from __future__ import annotations

import gzip
import json
import zlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflows.sources.capture import read_capture
from dataflows.venues import get_venue
from feedhouse.core.records import ParseResult, validate_quotes, validate_trades
from tests.support.fuzz import assert_declared_error
from tests.support.paths import corpus

CAPTURE_FILES = {
    "gemini": ["docs/GEMINI_WS.ws.docs"],
    "gemini@v2": ["GEMINI.ws.1.0"],
    "gateio": ["GATEIO.ws.1.0", "docs/GATEIO_QUOTES.ws.docs"],
    "bitmex": ["BITMEX.ws.1.0"],
    "deribit": ["DERIBIT.ws.1.0", "docs/DERIBIT_TRADES.ws.docs"],
    "huobi": ["HUOBI.ws.44.0", "docs/HUOBI_TRADES.ws.docs"],
    "bitget": ["BITGET.ws.1.0", "docs/BITGET_V2.ws.docs"],
}
PER_KIND = 6  # frames kept per message shape: small seeds, every shape represented


def _shape(frame: str | bytes) -> str:
    text = zlib.decompress(frame, 31) if isinstance(frame, bytes) else frame.encode()
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "text"
    if isinstance(msg, dict):
        keys = sorted(msg)
        tag = msg.get("type") or msg.get("table") or msg.get("channel") or msg.get("ch")
        if isinstance(msg.get("params"), dict):
            tag = str(msg["params"].get("channel", ""))[:6]
        if isinstance(msg.get("arg"), dict):
            tag = msg["arg"].get("channel")
        return f"{keys}:{str(tag)[:20]}"
    return type(msg).__name__


def _seeds(venue: str) -> list[str | bytes]:
    by_shape: dict[str, list] = {}
    for name in CAPTURE_FILES[venue]:
        for event in read_capture(corpus(name)):
            if event.kind == "received":
                by_shape.setdefault(_shape(event.data), []).append(event.data)
    # short frames first keeps examples fast; the biggest book frames add nothing
    seeds = [f for frames in by_shape.values() for f in sorted(frames, key=len)[:PER_KIND]]
    parse = get_venue(venue).parse
    # frames holding trades or quotes are what matters: weight them 4x
    return [f for f in seeds for _ in range(4 if _holds_records(parse(f, 1)) else 1)]


def _holds_records(result: ParseResult) -> bool:
    return bool(result.trades or result.quotes)


SEEDS = {venue: _seeds(venue) for venue in CAPTURE_FILES}

JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "nan", "inf", "1e999", "buy", "Sell", "x" * 200,
                     "9999-12-31T23:59:59.999Z", "2021-07-22T22:36:10Z", "1.5"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
)


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


@st.composite
def structural(draw, venue):
    """Decode a real frame, delete or retype one field (at any depth), encode it again."""
    frame = draw(st.sampled_from(SEEDS[venue]))
    binary = isinstance(frame, bytes)
    text = zlib.decompress(frame, 31) if binary else frame.encode()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return frame
    spots = list(_paths(doc))
    if not spots:
        return frame
    path, key = draw(st.sampled_from(spots))
    parent = doc
    for step in path:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = draw(JSON_VALUES)
    out = json.dumps(doc, separators=(",", ":")).encode()  # stdlib: ints beyond 64 bits
    return gzip.compress(out) if binary else out.decode()


@st.composite
def textual(draw, venue):
    """Truncate a frame, overwrite some bytes, or replace it with random bytes."""
    frame = draw(st.sampled_from(SEEDS[venue]))
    raw = frame if isinstance(frame, bytes) else frame.encode()
    how = draw(st.sampled_from(["truncate", "noise", "random"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif how == "noise":
        raw = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        raw = bytes(raw)
    else:
        raw = draw(st.binary(max_size=64))
    if isinstance(frame, bytes):
        return raw  # HTX: corrupt or truncated gzip
    return raw.decode("utf-8", errors="replace")


def _check(venue: str, frame: str | bytes) -> None:
    result = get_venue(venue).parse(frame, 1_700_000_000_000_000)
    assert isinstance(result, ParseResult)
    # each frame counts exactly once: records, ignored, or invalid
    assert bool(result.trades or result.quotes) + result.ignored + len(result.invalid) == 1
    for item in result.invalid:
        assert isinstance(item.raw, str) and item.reason.startswith(f"{get_venue(venue).name}: ")
        assert_declared_error(item.reason)
    validate_trades(result.trades)  # whatever comes out honours the contract
    validate_quotes(result.quotes)


FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("venue", sorted(CAPTURE_FILES))
@FUZZ
@given(data=st.data())
def test_structural_mutations_never_raise(venue, data):
    _check(venue, data.draw(structural(venue)))


@pytest.mark.parametrize("venue", sorted(CAPTURE_FILES))
@FUZZ
@given(data=st.data())
def test_byte_mutations_never_raise(venue, data):
    _check(venue, data.draw(textual(venue)))


@pytest.mark.parametrize("venue", sorted(CAPTURE_FILES))
def test_every_seed_parses_cleanly(venue):
    for frame in SEEDS[venue]:
        result = get_venue(venue).parse(frame, 1_700_000_000_000_000)
        assert not result.invalid, result.invalid


@pytest.mark.parametrize(("venue", "frame", "reason"), [
    ("gemini", "{not json", "not JSON"),
    ("gemini@v2", '{"type":"trade","symbol":"BTCUSD","event_id":1,"timestamp":1624493670759,'
                  '"price":"-1","quantity":"1","side":"buy"}', "non-positive"),
    ("gemini", '{"E":1759873803503023900,"s":"btcusd","t":1,"p":"-1","q":"1","m":true}',
     "non-positive"),
    ("gemini", '{"id":"1","status":400,"error":"bad stream"}', "venue error 400"),
    ("gateio", '{"channel":"spot.trades","event":"update","result":{"id":1}}', "missing field"),
    ("bitmex", '{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10Z",'
               '"symbol":"XBTUSD","side":"Up","size":1,"price":1,"trdMatchID":"a"}]}', "bad side"),
    ("deribit", '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.X.100ms",'
                '"data":{}}}', "not a list"),
    ("huobi", b"\x1f\x8b\x08\x00garbage", "undecodable gzip"),
    ("bitget", '{"action":"update","arg":{"instType":"sp","channel":"trade","instId":"BTCUSDT"},'
               '"data":[["1649290076333","0.1"]]}', "too few elements"),
])
def test_invalid_frames_carry_a_reason(venue, frame, reason):
    result = get_venue(venue).parse(frame, 1)
    assert len(result.invalid) == 1 and reason in result.invalid[0].reason

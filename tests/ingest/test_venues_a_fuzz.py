"""Property tests for venue adapters A: any mutation of a real frame yields records that
meet the contract, an ignored count, or Invalid records with a reason: parse never raises.

Mutations: truncation, random bytes spliced in, a JSON value replaced by another type,
a field deleted, two sibling values swapped, a whole random payload.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflows.sources.capture import parse_capture, read_capture
from dataflows.venues import bitfinex, get_venue
from feedhouse.core.records import ParseResult, validate_quotes, validate_trades
from tests.support.fuzz import assert_declared_error
from tests.support.paths import corpus

CORPUS = {
    "binance": ["BINANCE.ws.1.0", "BINANCE_FUTURES.ws.1.0", "docs/BINANCE_DELIVERY.ws.docs"],
    "coinbase": ["COINBASE.ws.28.0"],
    "kraken": ["KRAKEN.ws.48.0", "docs/KRAKEN_V2.ws.docs"],
    "okx": ["OKX.ws.1.0"],
    "bybit": ["BYBIT.ws.25.0", "docs/BYBIT_V5.ws.docs"],
    "bitfinex": ["BITFINEX.ws.11.0", "docs/BITFINEX_TRADES.ws.docs"],
    "bitstamp": ["BITSTAMP.ws.1.0"],
}
MAX_FRAMES = 60  # per venue: every record-bearing frame first, then a spread of the rest


def _frames(venue: str) -> list[str]:
    adapter = get_venue(venue)
    useful: list[str] = []
    other: list[str] = []
    for name in CORPUS[venue]:
        parse_capture(corpus(name))  # Bitfinex: learn the capture's channel ids
        for event in read_capture(corpus(name)):
            if event.kind != "received":
                continue
            result = adapter.parse(event.data, 1)
            (useful if result.trades or result.quotes else other).append(event.data)
    step = max(1, len(other) // 20)
    picked = useful[: MAX_FRAMES - 20] + other[::step][:20]
    return [f if isinstance(f, str) else f.decode() for f in picked]


FRAMES = {venue: _frames(venue) for venue in CORPUS}

SPECIAL = st.sampled_from(
    ["", "0", "-1", "nan", "inf", "-inf", "1e400", "buy", "sell", "b", "s", "Buy", "Sell",
     "te", "tu", "hb", "trade", "match", "aggTrade", "BTCUSDT", "XBT/USD", "1618678142.5"]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | SPECIAL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _paths(value, (*prefix, index))


def _mutate_json(data, frame: str) -> str:
    obj = orjson.loads(frame)
    path = data.draw(st.sampled_from(list(_paths(obj))))
    if not path:
        return orjson.dumps(data.draw(JSON)).decode()
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    op = data.draw(st.sampled_from(["replace", "delete", "swap"]))
    if op == "replace":
        parent[key] = data.draw(JSON)
    elif op == "delete":
        del parent[key]
    else:
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        other = data.draw(st.sampled_from(keys))
        parent[key], parent[other] = parent[other], parent[key]
    return orjson.dumps(obj).decode()


def _mutate(data, frame: str) -> str | bytes:
    kind = data.draw(st.sampled_from(["truncate", "splice", "json", "json", "json", "bytes"]))
    if kind == "truncate":
        return frame[: data.draw(st.integers(0, max(0, len(frame) - 1)))]
    if kind == "splice":
        at = data.draw(st.integers(0, len(frame)))
        junk = data.draw(st.binary(min_size=1, max_size=8))
        return frame.encode()[:at] + junk + frame.encode()[at:]
    if kind == "bytes":
        return data.draw(st.binary(max_size=64))
    try:
        return _mutate_json(data, frame)
    except orjson.JSONDecodeError:  # not JSON to begin with (OKX "pong")
        return frame[::-1]


def _check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert result.trades or result.quotes or result.ignored > 0 or result.invalid
    for item in result.invalid:
        assert isinstance(item.raw, str) and item.reason
        assert_declared_error(item.reason)
    validate_trades(result.trades)  # whatever is emitted meets the market.trades contract
    validate_quotes(result.quotes)


@pytest.fixture
def keep_bitfinex_channels():
    saved = dict(bitfinex._DEFAULT.channels)
    yield
    bitfinex._DEFAULT.channels.clear()
    bitfinex._DEFAULT.channels.update(saved)


@pytest.mark.parametrize("venue", sorted(CORPUS))
def test_mutated_frames_never_raise(venue: str, keep_bitfinex_channels) -> None:
    adapter = get_venue(venue)
    frames = FRAMES[venue]
    assert frames

    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def run(data) -> None:
        frame = data.draw(st.sampled_from(frames))
        _check(adapter.parse(_mutate(data, frame), 1_700_000_000_000_000))

    run()


@pytest.mark.parametrize("venue", sorted(CORPUS))
def test_every_real_frame_parses_cleanly(venue: str) -> None:
    """The unmutated corpus: no invalid records at all (the adapters know every shape)."""
    adapter = get_venue(venue)
    for frame in FRAMES[venue]:
        result = adapter.parse(frame, 1_700_000_000_000_000)
        _check(result)
        assert not result.invalid, (frame[:200], result.invalid)


def test_corpus_paths_exist() -> None:
    for names in CORPUS.values():
        for name in names:
            assert Path(corpus(name)).is_file(), name

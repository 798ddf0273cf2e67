"""Property tests for every venue adapter: any mutation of a real frame (see
tests/support/fuzz.py) comes out of `parse` as contract-valid trades/quotes, an ignored
frame or an Invalid with a declared reason: never an exception, and each frame is
accounted for exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflows.venues import bitfinex, get_venue
from feedhouse.core.records import ParseResult, validate_quotes, validate_trades
from tests.support.fuzz import (
    FUZZ,
    assert_declared_error,
    holds_records,
    seeds,
    structural,
    textual,
)
from tests.support.paths import corpus
from tests.support.venues import NOW_US

CORPUS = {
    "binance": ["BINANCE.ws.1.0", "BINANCE_FUTURES.ws.1.0", "docs/BINANCE_DELIVERY.ws.docs"],
    "coinbase": ["COINBASE.ws.28.0"],
    "kraken": ["KRAKEN.ws.48.0", "docs/KRAKEN_V2.ws.docs"],
    "okx": ["OKX.ws.1.0"],
    "bybit": ["BYBIT.ws.25.0", "docs/BYBIT_V5.ws.docs"],
    "bitfinex": ["BITFINEX.ws.11.0", "docs/BITFINEX_TRADES.ws.docs"],
    "bitstamp": ["BITSTAMP.ws.1.0"],
    "gemini": ["docs/GEMINI_WS.ws.docs"],
    "gemini@v2": ["GEMINI.ws.1.0"],
    "gateio": ["GATEIO.ws.1.0", "docs/GATEIO_QUOTES.ws.docs"],
    "bitmex": ["BITMEX.ws.1.0"],
    "deribit": ["DERIBIT.ws.1.0", "docs/DERIBIT_TRADES.ws.docs"],
    "huobi": ["HUOBI.ws.44.0", "docs/HUOBI_TRADES.ws.docs"],
    "bitget": ["BITGET.ws.1.0", "docs/BITGET_V2.ws.docs"],
}
SEEDS = {venue: seeds(venue, captures) for venue, captures in CORPUS.items()}


def _family(venue: str) -> str:
    return venue.split("@")[0].split("_")[0]


def _check(venue: str, frame: str | bytes) -> ParseResult:
    adapter = get_venue(venue)
    result = adapter.parse(frame, NOW_US)
    assert isinstance(result, ParseResult)
    # each frame counts exactly once: records, ignored, or invalid
    assert holds_records(result) + result.ignored + len(result.invalid) == 1
    for item in result.invalid:
        # the reason names the venue (its family: "coinbase" parses ws-feed frames as
        # coinbase_exchange does)
        source, sep, _ = item.reason.partition(": ")
        assert isinstance(item.raw, str) and sep and _family(source) == _family(adapter.name)
        assert_declared_error(item.reason)
    validate_trades(result.trades)  # whatever comes out honours the contract
    validate_quotes(result.quotes)
    return result


@pytest.fixture
def keep_bitfinex_channels():
    """Mutated subscribe acks must not leave channel ids behind for other tests."""
    saved = dict(bitfinex._DEFAULT.channels)
    yield
    bitfinex._DEFAULT.channels.clear()
    bitfinex._DEFAULT.channels.update(saved)


def _never_raises(venue: str, mutation) -> None:
    frames = SEEDS[venue]
    assert frames

    @FUZZ
    @given(data=st.data())
    def run(data) -> None:
        _check(venue, mutation(data, data.draw(st.sampled_from(frames))))

    run()


@pytest.mark.parametrize("venue", sorted(CORPUS))
def test_structural_mutations_never_raise(venue: str, keep_bitfinex_channels) -> None:
    _never_raises(venue, structural)


@pytest.mark.parametrize("venue", sorted(CORPUS))
def test_byte_mutations_never_raise(venue: str, keep_bitfinex_channels) -> None:
    _never_raises(venue, textual)


@pytest.mark.parametrize("venue", sorted(CORPUS))
def test_every_seed_parses_cleanly(venue: str) -> None:
    """The unmutated corpus: no invalid records at all (the adapters know every shape),
    and the seeds hold records (else the mutations test nothing that matters)."""
    results = [_check(venue, frame) for frame in SEEDS[venue]]
    assert not [r.invalid for r in results if r.invalid]
    assert any(holds_records(r) for r in results)


def test_corpus_paths_exist() -> None:
    for names in CORPUS.values():
        for name in names:
            assert Path(corpus(name)).is_file(), name

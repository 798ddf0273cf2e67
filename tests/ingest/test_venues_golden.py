"""Golden output of every venue capture: each recorded session and each capture built
from a venue's documented examples (under docs/) is parsed and compared exactly with
tests/golden/<capture>.{trades,quotes}.jsonl, with its counts pinned in EXPECTED; the
docs fixtures say where they come from; the venue is inferred from the connect URL; the
`capture parse` CLI reproduces the golden files.

Golden files are regenerated with `tests/golden/regenerate.py NAME` and checked by hand
(they are the spec).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from dataflows.sources.capture import capture_url, parse_capture, quote_json, trade_json
from dataflows.venues import venue_for_url
from feedhouse.core.records import validate_quotes, validate_trades
from tests.support.paths import FEEDHOUSE, GOLDEN, corpus

# capture -> (venue, frames, trades, quotes, ignored, invalid)
EXPECTED = {
    "BINANCE.ws.1.0": ("binance", 265, 2, 84, 179, 0),
    "BINANCE_FUTURES.ws.1.0": ("binance_futures", 1535, 91, 613, 831, 0),
    "BITFINEX.ws.11.0": ("bitfinex", 1693, 210, 21, 1665, 0),
    "BITGET.ws.1.0": ("bitget", 684, 430, 0, 646, 0),
    "BITMEX.ws.1.0": ("bitmex", 2120, 27, 436, 2010, 0),
    "BITSTAMP.ws.1.0": ("bitstamp", 747, 10, 0, 737, 0),
    "BYBIT.ws.25.0": ("bybit", 3342, 101, 0, 3276, 0),
    "COINBASE.ws.28.0": ("coinbase_exchange", 9946, 107, 107, 9732, 0),
    "DERIBIT.ws.1.0": ("deribit", 136, 0, 0, 136, 0),
    "GATEIO.ws.1.0": ("gateio", 239, 9, 0, 230, 0),
    "GEMINI.ws.1.0": ("gemini", 678, 516, 0, 652, 0),
    "HUOBI.ws.44.0": ("huobi", 362, 73, 0, 318, 0),
    "KRAKEN.ws.48.0": ("kraken", 49, 10, 0, 41, 0),
    "OKX.ws.1.0": ("okx", 410, 74, 28, 308, 0),
    # built from the venues' API documentation (no real capture of these formats)
    "docs/BINANCE_DELIVERY.ws.docs": ("binance_delivery", 4, 2, 1, 1, 0),
    "docs/BITFINEX_TRADES.ws.docs": ("bitfinex", 10, 6, 1, 4, 0),
    "docs/BITGET_V2.ws.docs": ("bitget", 9, 5, 1, 4, 0),
    "docs/BITMEX_TRADES.ws.docs": ("bitmex", 3, 1, 0, 2, 0),
    "docs/BYBIT_V5.ws.docs": ("bybit", 4, 3, 0, 2, 0),
    "docs/COINBASE_ADVANCED.ws.docs": ("coinbase", 3, 1, 1, 1, 0),
    "docs/DERIBIT_TRADES.ws.docs": ("deribit", 9, 4, 1, 5, 0),
    "docs/GATEIO_QUOTES.ws.docs": ("gateio", 6, 1, 2, 3, 0),
    "docs/GEMINI_WS.ws.docs": ("gemini", 3, 1, 1, 1, 0),
    "docs/HUOBI_TRADES.ws.docs": ("huobi", 6, 3, 1, 3, 0),
    "docs/KRAKEN_V2.ws.docs": ("kraken", 8, 3, 1, 5, 0),
    "docs/KRAKEN_BOOK.ws.docs": ("kraken", 8, 0, 0, 8, 0),  # book frames only: the trade path ignores them
}
# how the first line of a docs fixture states its provenance: prefix -> phrase it holds
PROVENANCE = {
    "# Not a recording: built from": "documentation",
    "# written from ": "API documentation",
}


def _golden(name: str, kind: str) -> list[bytes]:
    """The golden lines of a capture (none when the capture has no such records)."""
    path = GOLDEN / f"{Path(name).name}.{kind}.jsonl"
    return [line for line in path.read_bytes().splitlines() if line] if path.exists() else []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_matches_golden(name: str) -> None:
    venue, result, summary = parse_capture(corpus(name))
    assert (venue.name, summary.frames, summary.trades, summary.quotes, summary.ignored,
            summary.invalid) == EXPECTED[name]
    # every frame is accounted for exactly once (one frame may hold several trades)
    assert summary.ignored + summary.invalid <= summary.frames
    assert [orjson.dumps(trade_json(t)) for t in result.trades] == _golden(name, "trades")
    assert [orjson.dumps(quote_json(q)) for q in result.quotes] == _golden(name, "quotes")
    # the records honour the market.trades / market.quotes contract
    validate_trades(result.trades)
    validate_quotes(result.quotes)


def test_docs_fixtures_say_where_they_come_from() -> None:
    docs = [name for name in EXPECTED if name.startswith("docs/")]
    assert docs
    for name in docs:
        first = corpus(name).read_text().splitlines()[0]
        phrases = [p for prefix, p in PROVENANCE.items() if first.startswith(prefix)]
        assert phrases and phrases[0] in first, (name, first)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_venue_inferred_from_connect_url(name: str) -> None:
    assert venue_for_url(capture_url(corpus(name))).name == EXPECTED[name][0]


@pytest.mark.parametrize(
    ("url", "venue"),
    [
        ("wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade", "binance"),
        ("wss://stream.binance.com/ws/btcusdt@trade", "binance"),
        ("wss://fstream.binance.com/stream?streams=btcusdt@aggTrade", "binance_futures"),
        ("wss://dstream.binance.com/stream?streams=btcusd_perp@aggTrade", "binance_delivery"),
        ("wss://stream.binance.us:9443/stream?streams=btcusd@aggTrade", "binance_us"),
        ("wss://ws-feed.pro.coinbase.com", "coinbase_exchange"),
        ("wss://ws-feed.exchange.coinbase.com", "coinbase_exchange"),
        ("wss://advanced-trade-ws.coinbase.com", "coinbase"),
        ("wss://ws.kraken.com", "kraken"),
        ("wss://ws.kraken.com/v2", "kraken"),
        ("wss://ws.okx.com:8443/ws/v5/public", "okx"),
        ("wss://stream.bybit.com/realtime_public", "bybit"),
        ("wss://stream.bybit.com/v5/public/spot", "bybit"),
        ("wss://api.bitfinex.com/ws/2", "bitfinex"),
        ("wss://api-pub.bitfinex.com/ws/2", "bitfinex"),
        ("wss://ws.bitstamp.net/", "bitstamp"),
    ],
)
def test_every_host_maps_to_its_venue(url: str, venue: str) -> None:
    found = venue_for_url(url)
    assert found is not None and found.name == venue


@pytest.mark.integration
@pytest.mark.parametrize("name", ["BINANCE.ws.1.0", "HUOBI.ws.44.0"])  # HUOBI: gzip frames
def test_capture_parse_cli_reproduces_golden(name: str) -> None:
    done = subprocess.run(
        [FEEDHOUSE, "capture", "parse", str(corpus(name))], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.splitlines() == _golden(name, "trades")
    venue, frames, trades, quotes, ignored, invalid = EXPECTED[name]
    assert f"({venue})".encode() in done.stderr  # venue inferred from the connect URL
    summary = f"frames={frames} trades={trades} quotes={quotes} ignored={ignored} invalid={invalid}"
    assert summary.encode() in done.stderr

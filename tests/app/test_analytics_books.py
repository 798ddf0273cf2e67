"""book_at, depth and book_health on a store holding the parsed book updates of recorded
sessions, checked against the book state kept in Python from the same frames."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dataflows.books.capture import parse_book_capture
from dataflows.books.state import Books
from feedhouse.app import analytics
from feedhouse.core.records import iso_from_us
from feedhouse.store.client import warehouse
from feedhouse.store.insert import insert_arrow
from tests.support.paths import corpus


@pytest.fixture(scope="module")
def parsed():
    return {name: parse_book_capture(corpus(name))[1:]
            for name in ("OKX.ws.1.0", "BINANCE_FUTURES.ws.1.0")}


@pytest.fixture
def store(initialized, parsed):
    with warehouse(initialized) as client:
        for name, (columns, _) in parsed.items():
            table = columns.to_arrow(feed=name.split(".")[0].lower())
            insert_arrow(client, "market.book_updates", table, f"books-{name}")
            # the same batch redelivered under another token: collapses in FINAL
            insert_arrow(client, "market.book_updates", table, f"books-{name}-again")
        client.command(
            "INSERT INTO ops.feed_gaps (feed, venue, gap_start, gap_end, kind, reason) VALUES "
            "('okx', 'okx', '2022-05-13 16:27:10', '2022-05-13 16:27:10', 'book', "
            "'checksum mismatch: BTC-USDT venue 1 != book 2')")
    return initialized


def _state_at(columns, until_us: int | None, symbol: str):
    books = Books()
    books.apply([f for f in columns.frames if f.symbol == symbol
                 and (until_us is None or f.exchange_ts <= until_us)])
    return books.state("okx", symbol)


def _run(settings, name, **params):
    with warehouse(settings) as client:
        return analytics.run(client, name, {k: str(v) for k, v in params.items()})


@pytest.mark.parametrize("symbol", ["BTC-USDT", "BTC-USD-INV-220527", "UNI-USD-INV-PERP"])
def test_book_at_equals_the_checksum_proven_book(store, parsed, symbol):
    columns, _ = parsed["OKX.ws.1.0"]
    times = sorted({f.exchange_ts for f in columns.frames if f.symbol == symbol})
    for at in (times[len(times) // 2], times[-1]):
        state = _state_at(columns, at, symbol)
        assert state.synced and state.passed == state.checked > 0
        bids, asks = state.top(10)
        names, rows = _run(store, "book_at", venue="okx", symbol=symbol,
                           at=iso_from_us(at), levels=10)
        assert names[:5] == ["side", "level", "price", "amount", "native_amount"]
        got = {side: [(r[2], r[4]) for r in rows if r[0] == side] for side in ("bid", "ask")}
        assert got == {"bid": bids, "ask": asks}
        assert [r[1] for r in rows if r[0] == "bid"] == list(range(1, 11))
        assert max(p for p, _ in bids) < min(p for p, _ in asks)  # not crossed


def test_book_at_without_a_snapshot_is_empty(store):
    _, rows = _run(store, "book_at", venue="binance_futures", symbol="SUSHI-USDT-PERP",
                   at="2030-01-01 00:00:00", levels=5)
    assert rows == []


def test_depth_within_bps_of_mid_per_minute(store, parsed):
    columns, _ = parsed["OKX.ws.1.0"]
    frames = [f for f in columns.frames if f.symbol == "BTC-USDT"]
    minute_ends = sorted({(f.exchange_ts // 60_000_000 + 1) * 60_000_000 for f in frames})
    _, rows = _run(store, "depth", venue="okx", symbol="BTC-USDT", bps=10, window_minutes=60)
    assert len(rows) == len(minute_ends)
    for row, end in zip(rows, minute_ends, strict=True):
        state = _state_at(columns, end - 1, "BTC-USDT")
        bids, asks = state.top(10_000)
        mid = (bids[0][0] + asks[0][0]) / 2
        assert row[0].replace(tzinfo=UTC) == datetime.fromtimestamp(end / 1e6 - 60, tz=UTC)
        assert (row[1], row[2], row[3]) == (bids[0][0], asks[0][0], mid)
        assert row[4] == pytest.approx(sum(s for p, s in bids if p >= mid * (1 - 10 / 10000)))
        assert row[5] == pytest.approx(sum(s for p, s in asks if p <= mid * (1 + 10 / 10000)))
        assert row[6] == 0


def test_book_health_counts_events_snapshots_gaps_and_checksum_failures(store, parsed):
    names, rows = _run(store, "book_health", window_minutes=10**7)
    health = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    for venue, name in (("okx", "OKX.ws.1.0"), ("binance_futures", "BINANCE_FUTURES.ws.1.0")):
        columns, summary = parsed[name]
        events = {(f.symbol, f.exchange_ts, f.update_id) for f in columns.frames}
        assert health[venue]["level_updates"] == len(columns)
        assert health[venue]["book_events"] == len(events)
        assert health[venue]["snapshots"] == summary.snapshots
        assert health[venue]["sequence_gaps"] == len(summary.breaks) == 0
    assert health["okx"]["checksum_mismatches"] == 1
    assert health["binance_futures"]["checksum_mismatches"] == 0


def test_book_queries_answer_nothing_on_a_store_without_books(initialized):
    """With their defaults, on an empty market.book_updates (as on the demo's store)."""
    for name in ("book_at", "depth", "book_health"):
        with warehouse(initialized) as client:
            assert analytics.run(client, name)[1] == [], name

"""Books on the live path (issue 21): recorded sessions served by the real session server
over WebSocket, `feedhouse run`'s dataflow with `channels: [trades, books]`, a chDB store.

Every level update of the sessions lands in market.book_updates once (the count and
sum(price * amount) equal the capture's own, counted by `capture parse --channel books`),
the ledger equations hold per feed and minute with level updates counted like trades,
`book_at` rebuilds a non-crossed book, and a break in a book becomes an ops.feed_gaps row.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from dataflows.books.capture import parse_book_capture
from dataflows.books.live import BookFeed
from dataflows.frames import MessageBatch
from dataflows.parse.stage import parse_batch
from feedhouse.app.analytics import run as run_analytics
from feedhouse.app.drills.served import captures_folder, server_feeds
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from quality.runner import run_quality
from quality.window import Window
from tests.support.ingest import (
    bad_ledger_minutes,
    capture_messages,
    captures_dir,
    run_until_all_received,
)
from tests.support.paths import SESSIONS, VENUE_DOCS

pytestmark = pytest.mark.integration

# the demo's four venues whose sessions hold book frames, Deribit (149 level updates) and
# BitMEX (orderBookL2, 14,333: quanto sizes need the XBT price its quote frames carry)
SESSIONS_WITH_BOOKS = ("OKX.ws.1.0", "COINBASE.ws.28.0", "BYBIT.ws.25.0", "BINANCE_FUTURES.ws.1.0",
                       "DERIBIT.ws.1.0", "BITMEX.ws.1.0")


def test_live_books_land_once_with_the_ledger_and_book_at(tmp_path):
    names = SESSIONS_WITH_BOOKS
    server = SessionServer(captures_dir(tmp_path, names), speed=None, loop=False)
    server.start()
    try:
        # the demo's feeds: books subscribed where the session holds book frames
        feeds = server_feeds(server, names, books=True)
        assert all("books" in f["channels"] for f in feeds)
        feed_of = {f["url"].rsplit("/", 1)[1]: f["name"] for f in feeds}
        settings = load_settings(home=str(tmp_path / "fh"), recovery=False, feeds=feeds)
        run_until_all_received(server, settings)
    finally:
        server.stop()
    expected = {}
    for name in names:
        _venue, columns, _summary = parse_book_capture(SESSIONS / name)
        expected[feed_of[name]] = (len(columns), columns.notional())
    with warehouse(settings) as client:
        stored = {feed: (int(n), float(s)) for feed, n, s in client.query(
            "SELECT feed, count(), sum(price * amount) FROM market.book_updates FINAL "
            "GROUP BY feed").result_rows}
        parsed = dict(client.query("SELECT feed, sum(parsed) - sum(duplicates) "
                                   "FROM ops.ingest_ledger GROUP BY feed").result_rows)
        trades = client.query("SELECT count() FROM market.trades").result_rows[0][0]
        bad = bad_ledger_minutes(client)
        gaps = client.query("SELECT feed, kind, reason FROM ops.feed_gaps "
                            "WHERE kind != 'disconnect'").result_rows
        names, rows = run_analytics(client, "book_at", {"venue": "okx", "symbol": "BTC-USDT",
                                                        "at": "2099-01-01", "levels": "25"})
        book = [dict(zip(names, r, strict=True)) for r in rows]
        first, last = client.query("SELECT min(exchange_ts), max(exchange_ts) "
                                   "FROM market.book_updates").result_rows[0]
    # the books quality suite over every stored event: no crossed snapshot, no negative
    # size, no sequence break (the recordings hold none)
    window = Window(first.replace(tzinfo=UTC), last.replace(tzinfo=UTC) + timedelta(seconds=1))
    quality = run_quality(settings, window, ["market_book_updates"], docs=False,
                          now=window.end + timedelta(hours=1))
    assert quality.suite("market_book_updates").rows > 1000
    assert [o.expectation for o in quality.suite("market_book_updates").failed] == []
    assert bad == []
    assert trades > 0  # trades still flow beside the books
    for feed, (levels, notional) in expected.items():
        assert levels > 100, feed
        got_levels, got_notional = stored[feed]
        # one row per level update (a repeated key within a session would collapse)
        assert got_levels == pytest.approx(levels, abs=2), feed
        assert got_notional == pytest.approx(notional, rel=1e-6), feed
        assert parsed[feed] >= got_levels
    assert gaps == []  # the recordings hold no sequence gap and every checksum is right
    bids = [r for r in book if r["side"] == "bid"]
    asks = [r for r in book if r["side"] == "ask"]
    assert len(bids) == 25 and len(asks) == 25
    assert max(r["price"] for r in bids) < min(r["price"] for r in asks)


def test_bitmex_frames_delivered_twice_land_once_without_a_gap(tmp_path):
    """BitMEX has no sequence id: feedhouse numbers its book events. With the session
    server repeating one frame in 20, every repeat gets its first numbers again, so the
    dedup window drops it (counted as duplicates) and a repeated delete is no unknown id."""
    names = ("BITMEX.ws.1.0",)
    server = SessionServer(captures_dir(tmp_path, names), speed=None, loop=False,
                           faults="dup=0.05")
    server.start()
    try:
        feeds = server_feeds(server, names, books=True)
        settings = load_settings(home=str(tmp_path / "fh"), recovery=False, feeds=feeds)
        run_until_all_received(server, settings)
    finally:
        server.stop()
    _venue, columns, _summary = parse_book_capture(SESSIONS / names[0])
    with warehouse(settings) as client:
        stored, notional = client.query("SELECT count(), sum(price * amount) "
                                        "FROM market.book_updates FINAL").result_rows[0]
        duplicates = client.query("SELECT sum(duplicates) FROM ops.ingest_ledger").result_rows[0][0]
        gaps = client.query("SELECT kind, reason FROM ops.feed_gaps "
                            "WHERE kind != 'disconnect'").result_rows
        bad = bad_ledger_minutes(client)
    assert gaps == []
    assert bad == []
    # one row per level update, as without repeats (a key repeated within the session collapses)
    assert stored == pytest.approx(len(columns), abs=2)
    assert notional == pytest.approx(columns.notional(), rel=1e-6)
    assert duplicates > 0  # the repeats reached the dedup window and were counted there


def test_a_checksum_mismatch_is_a_feed_gap_and_asks_for_a_resync():
    from dataflows.books.resync import take_resync

    messages = capture_messages("OKX.ws.1.0")
    # corrupt one level's size in an update after the snapshot: the checksum must fail
    book_at = [i for i, (_ts, raw) in enumerate(messages)
               if '"action":"update"' in raw and '"books"' in raw]
    i = book_at[5]
    ts, raw = messages[i]
    start = raw.index('"bids":[["') + len('"bids":[["')
    price_end = raw.index('","', start) + 3
    size_end = raw.index('"', price_end)
    messages[i] = (ts, raw[:price_end] + "123.456" + raw[size_end:])
    feed = BookFeed("okx-test", "okx")
    batch = MessageBatch("okx-test", "okx", "p", 0, messages, [])
    parsed = parse_batch(batch, books=feed)
    mismatches = [g for g in parsed.gaps if g.kind == "checksum"]
    assert mismatches and mismatches[0].reason.startswith("checksum mismatch: ")
    assert take_resync("okx-test") and not take_resync("okx-test")


def test_an_invalid_frame_unsyncs_books_without_sequence_ids():
    """Coinbase level2 carries no sequence id nor checksum: a frame lost to corruption could
    only be a silent hole in a book, so every book of the feed waits for a snapshot."""
    from dataflows.books.resync import take_resync

    messages = capture_messages("COINBASE.ws.28.0")
    feed = BookFeed("cb-test", "coinbase_exchange")
    first = parse_batch(MessageBatch("cb-test", "coinbase_exchange", "p", 0, messages[:400], []),
                        books=feed)
    assert first.books is not None and len(first.books) > 0 and not first.gaps
    assert any(s.synced for s in feed.books.states.values())
    ts = messages[400][0]
    broken = [(ts, '{"type":"l2update","product_id":"SKL-USD","changes":[["buy","0.1"')]
    parsed = parse_batch(MessageBatch("cb-test", "coinbase_exchange", "p", 400, broken, []),
                         books=feed)
    (gap,) = parsed.gaps
    assert gap.kind == "sequence" and gap.reason.startswith("sequence gap: * 1 invalid frame")
    assert len(parsed.dead) == 1
    assert not any(s.synced for s in feed.books.states.values())
    assert take_resync("cb-test")


def test_kraken_books_from_its_documented_frames_land_with_every_checksum_proven(tmp_path):
    """Kraken's recording has no book frame: its documented v2 `book` frames (a session
    built from them, tests/fixtures/venue_docs/KRAKEN_BOOK.ws.docs) go through the session
    server, `feedhouse run` (trades + books subscribed, depth 25) and chDB: every level
    update stored once, the snapshot's rows flagged, no checksum mismatch on the way."""
    names = ("KRAKEN_BOOK.ws.docs",)
    server = SessionServer(captures_folder(tmp_path, names, VENUE_DOCS), speed=None, loop=False)
    server.start()
    try:
        feeds = server_feeds(server, names, VENUE_DOCS, books=True)
        assert [(f["venue"], f["channels"], f["symbols"]) for f in feeds] == [
            ("kraken", ["trades", "books"], ["MATIC-USD"])]
        settings = load_settings(home=str(tmp_path / "fh"), recovery=False, feeds=feeds)
        run_until_all_received(server, settings)
    finally:
        server.stop()
    _venue, columns, summary = parse_book_capture(VENUE_DOCS / names[0])
    assert (len(columns), summary.checksums_passed) == (19, 4)
    with warehouse(settings) as client:
        stored = client.query("SELECT count(), sum(price * amount), countIf(is_snapshot = 1) "
                              "FROM market.book_updates FINAL WHERE venue = 'kraken' "
                              "AND symbol = 'MATIC-USD'").result_rows[0]
        gaps = client.query("SELECT kind, reason FROM ops.feed_gaps "
                            "WHERE kind != 'disconnect'").result_rows
        bad = bad_ledger_minutes(client)
        names_, rows = run_analytics(client, "book_at", {"venue": "kraken", "symbol": "MATIC-USD",
                                                          "at": "2099-01-01", "levels": "25"})
    assert gaps == [] and bad == []
    assert stored[0] == 19 and stored[2] == 14
    assert stored[1] == pytest.approx(columns.notional(), rel=1e-9)
    book = [dict(zip(names_, r, strict=True)) for r in rows]
    # the book after the last update: 10 bids (0.5667 in, 0.5658 out), 4 asks (0.5669 out, 0.5672 in)
    assert max(r["price"] for r in book if r["side"] == "bid") == 0.5667
    assert sorted(r["price"] for r in book if r["side"] == "ask") == [0.5668, 0.567, 0.5671, 0.5672]
    assert len([r for r in book if r["side"] == "bid"]) == 10

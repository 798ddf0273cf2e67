"""Binance books synced on the live path (issue 21): the recorded spot and USD-M sessions
served by the real session server, `feedhouse run`'s dataflow with `channels: [.., books]`
and `rest_url` pointing at a real loopback HTTP server that answers `/api/v3/depth` and
`/fapi/v1/depth` with a snapshot consistent with the recording (lastUpdateId a third into
each symbol's id chain, its levels what the recorded updates left by then:
tests/support/binance_depth.py; the recordings hold no REST reply), and chDB.

The sessions play at 5x (6 s) and the REST server answers each request after 0.6 s, so
snapshots reach the dataflow both before their lastUpdateId was streamed (the updates up
to it are dropped, the next overlaps it) and after newer updates came (those apply on
top, and the stream continues from them). Each symbol's snapshot is fetched once and
stored once (is_snapshot = 1), no break is recorded, and `book_at` rebuilds exactly the
book every recorded update left.
"""

from __future__ import annotations

import orjson
import pytest

from dataflows.books.capture import parse_book_capture
from feedhouse.app.analytics import run as run_analytics
from feedhouse.app.drills.served import server_feeds
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from tests.support.binance_depth import DepthServer, book_after, depth_events, snapshot_body
from tests.support.ingest import bad_ledger_minutes, captures_dir, run_until_all_received
from tests.support.paths import SESSIONS

pytestmark = pytest.mark.integration

NAMES = ("BINANCE.ws.1.0", "BINANCE_FUTURES.ws.1.0")
LEVELS = 20


def test_binance_books_sync_on_a_rest_snapshot_and_book_at_is_the_recorded_book(tmp_path):
    events = {name: depth_events(name) for name in NAMES}
    bodies, snapshot_ids = {}, {}
    for name, by_symbol in events.items():
        for native, mine in by_symbol.items():
            # a fifth in, or later where the book so far is empty (stored as no row at all)
            k = next(k for k in range(len(mine) // 5, len(mine)) if any(book_after(mine[:k + 1])))
            bodies[native] = snapshot_body(mine, k, "FUTURES" in name)
            snapshot_ids[native] = mine[k]["u"]
    server = SessionServer(captures_dir(tmp_path, NAMES), speed=5, loop=False)
    server.start()
    try:
        with DepthServer(bodies, delay_s=0.6) as depth:
            feeds = server_feeds(server, NAMES, books=True)
            for feed in feeds:
                feed["rest_url"] = depth.url
            settings = load_settings(home=str(tmp_path / "fh"), recovery=False, feeds=feeds)
            run_until_all_received(server, settings, injected=len(bodies))
    finally:
        server.stop()
    # one request per symbol: each book synced on its first snapshot
    assert sorted(r.split("symbol=")[1].split("&")[0] for r in depth.requests) == sorted(bodies)
    assert all("limit=1000" in r for r in depth.requests)
    recorded = {}
    for name in NAMES:
        _venue, columns, _summary = parse_book_capture(SESSIONS / name)
        recorded[name] = len(columns)
    with warehouse(settings) as client:
        snapshots = client.query(
            "SELECT native_symbol, uniqExact(update_id, exchange_ts), any(update_id), count() "
            "FROM market.book_updates FINAL WHERE is_snapshot = 1 GROUP BY native_symbol"
        ).result_rows
        updates = dict(client.query(
            "SELECT venue, count() FROM market.book_updates FINAL WHERE is_snapshot = 0 "
            "GROUP BY venue").result_rows)
        # per symbol: updates newer than its snapshot received before / after it
        around = client.query(
            "SELECT u.native_symbol, countIf(u.received_ts < s.r), countIf(u.received_ts > s.r) "
            "FROM market.book_updates AS u FINAL INNER JOIN (SELECT native_symbol, "
            "max(received_ts) AS r, max(update_id) AS l FROM market.book_updates "
            "WHERE is_snapshot = 1 GROUP BY native_symbol) AS s USING native_symbol "
            "WHERE u.is_snapshot = 0 AND u.update_id > s.l GROUP BY u.native_symbol"
        ).result_rows
        gaps = client.query("SELECT kind, reason FROM ops.feed_gaps "
                            "WHERE kind != 'disconnect'").result_rows
        bad = bad_ledger_minutes(client)
        books = {}
        for native, symbol, venue in client.query(
                "SELECT DISTINCT native_symbol, symbol, venue FROM market.book_updates").result_rows:
            names, rows = run_analytics(client, "book_at", {
                "venue": venue, "symbol": symbol, "at": "2099-01-01", "levels": str(LEVELS)})
            books[native] = [dict(zip(names, r, strict=True)) for r in rows]
    assert gaps == []
    assert bad == []
    assert {s[0]: s[1:3] for s in snapshots} == {n: (1, i) for n, i in snapshot_ids.items()}
    levels = {n: len(orjson.loads(b)["bids"]) + len(orjson.loads(b)["asks"]) for n, b in bodies.items()}
    assert {s[0]: s[3] for s in snapshots} == levels  # every level of each snapshot, once
    assert updates == {"binance": recorded["BINANCE.ws.1.0"],
                       "binance_futures": recorded["BINANCE_FUTURES.ws.1.0"]}
    # both orders happened: newer updates before a snapshot (applied on top), and after
    assert any(before for _n, before, _after in around), around
    assert sum(1 for _n, _before, after in around if after) >= len(bodies) // 2, around
    for by_symbol in events.values():
        for native, mine in by_symbol.items():
            bids, asks = book_after(mine)
            want = ([("bid", p, float(bids[p][1])) for p in sorted(bids, reverse=True)[:LEVELS]]
                    + [("ask", p, float(asks[p][1])) for p in sorted(asks)[:LEVELS]])
            got = [(r["side"], r["price"], r["native_amount"]) for r in books[native]]
            assert sorted(got) == sorted(want), native

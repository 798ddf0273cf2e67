"""Tardis incremental_book_L2 backfill: a Tardis-format file written from the recorded OKX
session loads into market.book_updates with ledger rows, a rerun adds nothing, and
book_at over the backfilled rows is the checksum-proven book of the recording."""

from __future__ import annotations

from datetime import date

import pytest

from dataflows.books.capture import parse_book_capture
from dataflows.books.state import Books
from dataflows.books.tardis import read_tardis_book
from feedhouse.app import analytics
from feedhouse.core.errors import InputError
from feedhouse.core.records import iso_from_us
from feedhouse.store.client import warehouse
from feedhouse.verify.backfill import NoArchiveFiles, verify_day
from feedhouse.verify.backfill_books import backfill_books_day
from tests.support.paths import corpus

DAY = date(2022, 5, 13)
HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def _tardis_file(folder, symbol="BTC-USDT"):
    """The recorded OKX book of `symbol` written as Tardis would (prices/sizes as sent)."""
    _, columns, _ = parse_book_capture(corpus("OKX.ws.1.0"))
    frames = [f for f in columns.frames if f.symbol == symbol]
    lines = [HEADER]
    for f in frames:
        for side, levels in (("bid", f.bids), ("ask", f.asks)):
            for level in levels:
                lines.append(f"okex,{f.native_symbol},{f.exchange_ts},{f.received_ts},"
                             f"{'true' if f.is_snapshot else 'false'},{side},{level[0]},{level[1]}\n")
    path = folder / f"okex_incremental_book_L2_{DAY}_{symbol}.csv"
    path.write_text("".join(lines))
    return path, frames, len(lines) - 1


def test_tardis_books_backfill_is_idempotent_and_rebuilds_the_proven_book(initialized, tmp_path):
    path, frames, rows = _tardis_file(tmp_path)
    connect = lambda: warehouse(initialized)  # noqa: E731
    first = backfill_books_day(connect, "okx", DAY, tmp_path, chunk_rows=1000)
    assert (first.total("read"), first.total("repeated"), first.total("existing")) == (rows, 0, 0)
    assert first.total("inserted") == rows
    again = backfill_books_day(connect, "okx", DAY, tmp_path, chunk_rows=1000)
    assert (again.total("existing"), again.total("inserted")) == (rows, 0)
    books = Books()
    books.apply(frames)
    state = books.state("okx", "BTC-USDT")
    assert state.synced and state.passed == len(frames)
    bids, asks = state.top(10)
    with warehouse(initialized) as client:
        stored = client.query("SELECT count(), uniqExact(feed) FROM market.book_updates").result_rows
        ledger = client.query("SELECT sum(inserted) FROM ops.ingest_ledger "
                              "WHERE feed = 'backfill:okx'").result_rows
        _, got = analytics.run(client, "book_at", {
            "venue": "okx", "symbol": "BTC-USDT", "at": iso_from_us(frames[-1].exchange_ts),
            "levels": "10"})
        # the row-count audit covers market.book_updates: ledger = distinct keys, per minute
        assert verify_day(client, first) == []
        minutes = client.query("SELECT uniqExact(toStartOfMinute(exchange_ts)) "
                               "FROM market.book_updates").result_rows[0][0]
        # a level update stored without its ledger count is a mismatch the audit names
        client.command("INSERT INTO market.book_updates (venue, symbol, native_symbol, exchange_ts, "
                       "received_ts, is_snapshot, side, price, amount, feed) VALUES ('okx', "
                       "'BTC-USDT', 'BTC-USDT', '2022-05-13 16:27:30', '2022-05-13 16:27:30', 0, "
                       "'bid', 1.5, 2, 'backfill:okx')")
        bad = verify_day(client, first)
    assert stored == [(rows, 1)] and ledger == [(rows,)] and minutes >= 1
    assert len(bad) == 1 and bad[0].status != "ok"
    assert [(r[2], r[3]) for r in got if r[0] == "bid"] == bids
    assert [(r[2], r[3]) for r in got if r[0] == "ask"] == asks


def test_tardis_book_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / f"okex_incremental_book_L2_{DAY}_BTC-USDT.csv"
    bad.write_text(HEADER + "okex,BTC-USDT,1652459225393000,1652459225507364,false,buy,1,1\n")
    with pytest.raises(InputError, match="side must be bid or ask"):
        read_tardis_book(bad)
    bad.write_text(HEADER + "okex,BTC-USDT,1652459225393000,1652459225507364,false,bid,1,-1\n")
    with pytest.raises(InputError, match="amounts >= 0"):
        read_tardis_book(bad)
    with pytest.raises(InputError, match="name is not"):
        read_tardis_book(tmp_path / "books.csv")
    with pytest.raises(NoArchiveFiles):
        backfill_books_day(lambda: None, "kraken", DAY, tmp_path)


@pytest.mark.integration
def test_backfill_books_command_loads_and_audits_a_day(settings, tmp_path):
    from tests.support.cli import run_cli

    _, _, rows = _tardis_file(tmp_path)
    env = {"FEEDHOUSE_HOME": str(settings.home)}
    done = run_cli("backfill", "--venue", "okx", "--start", DAY.isoformat(), "--archive",
                   str(tmp_path), "--books", timeout=300, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(rows) in done.stdout and "ok" in done.stdout
    with warehouse(settings) as client:
        assert client.query("SELECT count() FROM market.book_updates").result_rows == [(rows,)]
    missing = run_cli("backfill", "--venue", "kraken", "--start", DAY.isoformat(), "--archive",
                      str(tmp_path), "--books", **env)
    assert missing.returncode == 1 and "no Tardis incremental_book_L2 file" in missing.stdout + missing.stderr

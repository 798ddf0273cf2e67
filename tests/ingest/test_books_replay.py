"""Book updates of several feeds through group commit and the buffer (issue 21): their
string columns are Arrow dictionaries, one per batch, and the combined insert must still
go in as one insert -- live, and on replay after an outage, where a refused group had
logged the replay `failed: not all rows replayed` with no error (the demo's outage)."""

from __future__ import annotations

from dataflows.books.columns import BookColumns, BookFrame
from dataflows.sink.batches import BOOKS, combine, make_batch
from dataflows.sink.writer import Writer
from feedhouse.store.client import warehouse
from feedhouse.store.faults import write_faults
from feedhouse.store.ledger import LedgerDelta

T0 = 1_700_000_000_000_000
FEEDS = (("okx", "okx", "BTC-USDT"), ("coinbase", "coinbase_exchange", "ETH-USD"))


def book_batch(feed: str, venue: str, symbol: str, events: int = 20):
    """A snapshot and updates of one symbol, as the sink builds them (dictionary columns)."""
    frames = [BookFrame(venue, symbol, symbol.replace("-", ""), "spot", T0 + i * 1000, T0 + i * 1000,
                        i == 0, 0, 0, [[f"{100 - i % 5}.5", "1"]], [[f"{101 + i % 5}.5", "2"]])
              for i in range(events)]
    data = BookColumns.of(frames).to_arrow(feed, dictionary=True)
    return make_batch(BOOKS, feed, f"{feed}:0:{BOOKS}:0-{events - 1}:x", data)


def stored(settings) -> dict[str, int]:
    with warehouse(settings) as client:
        return dict(client.query(
            "SELECT feed, count() FROM market.book_updates GROUP BY feed").result_rows)


def test_book_batches_of_several_feeds_go_in_as_one_insert(sink_settings):
    settings = sink_settings
    writer = Writer(settings)
    try:
        outcomes = writer.write_many([(book_batch(*f), LedgerDelta()) for f in FEEDS])
        assert writer.inserts == 1  # not one per feed after a refused combined insert
    finally:
        writer.close()
    assert outcomes == ["inserted"] * 2
    assert stored(settings) == {"okx": 40, "coinbase": 40}


def test_a_buffered_group_of_book_batches_replays_whole_and_logs_finished(sink_settings):
    settings = sink_settings
    parts = [book_batch(*f) for f in FEEDS]
    ledger = LedgerDelta()
    write_faults(settings.fault_file, outage=True)
    writer = Writer(settings)
    try:
        assert writer.write_many([(b, ledger) for b in parts]) == ["buffered"] * 2
        assert {e.group for e in writer.buffer.pending()} == {combine(parts).token}
        write_faults(settings.fault_file, outage=False)
        reports = writer.maybe_replay(force=True)
        assert writer.buffer.pending_rows == 0
    finally:
        writer.close()
    assert sorted((r.feed, r.rows, r.buffered_rows, r.status, r.error) for r in reports) == [
        ("coinbase", 40, 40, "finished", ""), ("okx", 40, 40, "finished", "")]
    assert stored(settings) == {"okx": 40, "coinbase": 40}
    with warehouse(settings) as client:
        logged = client.query("SELECT feed, status FROM ops.replay_log ORDER BY feed").result_rows
        dead = client.query("SELECT count() FROM ops.dead_letter").result_rows[0][0]
    assert logged == [("coinbase", "finished"), ("okx", "finished")] and dead == 0


def test_a_unit_refused_on_replay_names_the_reason_in_the_replay_log(sink_settings):
    """Rows ClickHouse refuses for good leave the replay short: the log says why."""
    settings = sink_settings
    bad = book_batch("okx", "okx", "BTC-USDT")
    bad.table = "market.no_such_table"  # refused whatever the rows
    write_faults(settings.fault_file, outage=True)
    writer = Writer(settings)
    try:
        assert writer.write(bad, LedgerDelta()) == "buffered"
        write_faults(settings.fault_file, outage=False)
        (report,) = writer.maybe_replay(force=True)
    finally:
        writer.close()
    assert report.status == "failed" and report.rows == 0
    assert report.error.startswith("refused: ") and "no_such_table" in report.error

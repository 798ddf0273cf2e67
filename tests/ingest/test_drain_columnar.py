"""The buffer drain in large chunks (dataflows.sink.drain): many buffered batches go in as one
insert, nothing is stored twice -- neither a batch whose first insert had landed, nor a
chunk replayed again after a crash before its batches were deleted -- and the replay log
and ledger say what they said before."""

from __future__ import annotations

from dataflows.sink.batches import TRADES, make_batch, rows_table
from dataflows.sink.buffer import LocalBuffer
from dataflows.sink.drain import replay_with
from dataflows.sink.writer import Writer
from feedhouse.core.records import Trade
from feedhouse.store.client import warehouse

T0 = 1_700_000_000_000_000
BATCHES, PER = 40, 250


def batch(k: int, per: int = PER):
    rows = [Trade("binance", "BTC-USDT", "BTCUSDT", str(k * per + i), 100.0 + i, 0.5, "buy",
                  T0 + (k * per + i) * 1_000_000, T0) for i in range(per)]
    return make_batch(TRADES, "bn", f"bn:{k}", rows_table(TRADES, rows, {"feed": "bn"}))


def fill(settings) -> list:
    batches = [batch(k) for k in range(BATCHES)]
    with LocalBuffer(settings.buffer_path) as buf:
        for b in batches:
            buf.put(b)
    return batches


def stored(settings) -> tuple[int, int, int, int]:
    with warehouse(settings) as client:
        rows, keys = client.query("SELECT count(), uniqExact(trade_id) FROM market.trades").result_rows[0]
        replayed, inserted = client.query(
            "SELECT sum(replayed), sum(inserted) FROM ops.ingest_ledger WHERE feed = 'bn'").result_rows[0]
    return int(rows), int(keys), int(replayed or 0), int(inserted or 0)


def test_buffered_batches_drain_as_one_insert_and_a_landed_batch_is_not_stored_twice(initialized):
    settings = initialized
    batches = fill(settings)
    writer = Writer(settings)
    try:
        writer.insert_once(batches[7])  # its first insert had landed although the call failed
        before = writer.inserts
        reports = replay_with(writer)
        combined = writer.inserts - before
    finally:
        writer.close()
    assert [(r.table, r.rows, r.buffered_rows, r.batches, r.status) for r in reports] == [
        (TRADES, BATCHES * PER, BATCHES * PER, BATCHES, "finished")]
    assert combined <= 3  # one insert for the 39 others, plus the replay log and ledger rows
    assert stored(settings) == (BATCHES * PER, BATCHES * PER, BATCHES * PER, BATCHES * PER)
    with LocalBuffer(settings.buffer_path) as buf:
        assert buf.pending_rows == 0
    with warehouse(settings) as client:
        log = client.query("SELECT feed, table_name, batches, rows, buffered_rows, status, "
                           "toUnixTimestamp64Micro(first_event_ts), toUnixTimestamp64Micro(last_event_ts) "
                           "FROM ops.replay_log").result_rows
    assert log == [("bn", TRADES, BATCHES, BATCHES * PER, BATCHES * PER, "finished", T0,
                    T0 + (BATCHES * PER - 1) * 1_000_000)]


def test_a_drain_that_stopped_before_deleting_replays_the_same_insert_and_stores_nothing_twice(
        initialized, monkeypatch):
    settings = initialized
    fill(settings)
    real_delete = LocalBuffer.delete_many
    monkeypatch.setattr(LocalBuffer, "delete_many", lambda self, ids: None)  # "crash" before delete
    writer = Writer(settings)
    try:
        replay_with(writer)
    finally:
        writer.close()
    monkeypatch.setattr(LocalBuffer, "delete_many", real_delete)
    writer = Writer(settings)
    try:
        with LocalBuffer(settings.buffer_path) as buf:
            assert buf.pending_rows == BATCHES * PER
        writer.buffer.close()
        writer.buffer = LocalBuffer(settings.buffer_path)
        reports = replay_with(writer)
    finally:
        writer.close()
    assert sum(r.rows for r in reports) == BATCHES * PER
    rows, keys, _, _ = stored(settings)
    assert rows == keys == BATCHES * PER  # found stored (and its rebuilt token would be dropped)


def test_a_chunk_larger_than_the_buffers_memory_limit_drains(initialized):
    """The buffer keeps DuckDB's memory small while ingesting; a drain reads chunks of
    hundreds of thousands of rows, so it raises the limit while it runs (at 128 MB a
    500k-row chunk failed with "Out of Memory Error"): here 40k rows (~4 MB of payloads,
    read as one chunk) under a 8 MB limit, which failed before."""
    settings = initialized
    with LocalBuffer(settings.buffer_path) as buf:
        for k in range(BATCHES):
            buf.put(batch(k, per=1000))
    writer = Writer(settings, buffer=LocalBuffer(settings.buffer_path, memory_limit="8MB"))
    try:
        reports = replay_with(writer)
        limit = writer.buffer._con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        writer.close()
    assert [(r.rows, r.status) for r in reports] == [(BATCHES * 1000, "finished")]
    assert limit == "7.6 MiB"  # the buffer's own limit again after the drain
    assert stored(settings) == (BATCHES * 1000,) * 4

"""The sink under a ClickHouse outage (fault injector): retry, buffer, automatic replay
with the same tokens, replay log, and a ledger that reconciles."""

from __future__ import annotations

import time

import pytest
from bytewax.testing import TestingSource

from dataflows.dedup.stage import dedup_parsed, tick
from dataflows.dedup.window import DedupWindow
from dataflows.parse.stage import parse_batch
from dataflows.runner import run
from dataflows.sink.gather import GatherWindow
from dataflows.sink.stage import FeedSinkPartition
from dataflows.sink.stats import STATS
from dataflows.sink.writer import drain_buffer
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from feedhouse.store.faults import write_faults
from feedhouse.store.ledger import ledger_totals
from feedhouse.store.migrations import init_schema
from tests.support.ingest import bad_ledger_minutes, capture_messages, message_batches, table_counts


def make_settings(home, **extra):
    return load_settings(
        home=str(home),
        recovery=False,
        fault_file=str(home / "faults.json"),
        feeds=[{"name": "cb", "venue": "coinbase"}],
        sink={
            "batch_ms": 5,
            "retry_initial_s": 0.01,
            "retry_max_s": 0.05,
            "buffer_after_s": 0.1,
            "replay_probe_s": 0.1,
        },
        **extra,
    )


def deduped_coinbase(n: int, per: int) -> tuple[list, list]:
    """The first n messages of the Coinbase capture, parsed and deduplicated in batches
    of `per` (as feed cb): (messages, parsed batches)."""
    messages = capture_messages("COINBASE.ws.28.0")[:n]
    window = DedupWindow(600, 5)
    return messages, [dedup_parsed(window, parse_batch(b))
                      for b in message_batches("cb", "coinbase", messages, per=per)]


def items_with_outage(settings, batches, down_at: int, up_at: int, down_s: float = 1.5):
    """Yield batches; the warehouse is unreachable from item down_at until item up_at and
    at least `down_s` (the committer thread inserts on its own clock: an outage of a few
    items only could end before it tries, on a loaded machine)."""
    went_down = 0.0
    for i, batch in enumerate(batches):
        if i == down_at:
            write_faults(settings.fault_file, outage=True)
            went_down = time.monotonic()
        if i == up_at:
            time.sleep(max(0.0, went_down + down_s - time.monotonic()))
            write_faults(settings.fault_file, outage=False)
        time.sleep(0.01)
        yield batch


def test_outage_buffers_then_replays_everything_once(tmp_path):
    settings = make_settings(tmp_path)
    messages = capture_messages("COINBASE.ws.28.0")[:4000]
    batches = message_batches("cb", "coinbase", messages, per=100)
    batches += message_batches("cb", "coinbase", messages[:1000], per=100, start=len(messages))
    source = TestingSource(items_with_outage(settings, batches, 10, 25))
    run(settings, sources=[("test_in", source)], handle_signals=False)
    with warehouse(settings) as client:
        rows, keys = table_counts(client, "cb")
        totals = ledger_totals(client, "cb")
        log = client.query(
            "SELECT sum(rows), sum(buffered_rows), countIf(status != 'finished') FROM ops.replay_log"
            " WHERE table_name IN ('market.trades', 'market.quotes')"
        ).result_rows[0]
        assert bad_ledger_minutes(client) == []
    assert rows == keys > 0  # nothing stored twice
    assert totals["buffered"] > 0 and totals["replayed"] == totals["buffered"]
    assert totals["inserted"] == keys
    assert totals["duplicates"] > 0  # the repeated first 1000 messages
    assert totals["parsed"] == totals["duplicates"] + totals["inserted"]
    assert log == (totals["replayed"], totals["replayed"], 0)


@pytest.mark.integration
def test_replay_command_drains_a_buffer_left_by_a_down_warehouse(tmp_path):
    from tests.support.cli import run_cli
    from tests.support.ingest import write_config

    config = write_config(tmp_path, [{"name": "cb", "venue": "coinbase"}], recovery=False)
    settings = load_settings(config)
    batches = message_batches("cb", "coinbase", capture_messages("COINBASE.ws.28.0")[:3000], per=100)
    from feedhouse.store.migrations import init_schema

    init_schema(settings)
    write_faults(settings.fault_file, outage=True)
    run(settings, sources=[("test_in", TestingSource(batches))], handle_signals=False)
    out = run_cli("--config", str(config), "drain")  # still down: it says so, keeps all
    assert out.returncode == 1 and "stopped" in out.stderr
    write_faults(settings.fault_file, outage=False)
    out = run_cli("--config", str(config), "replay")  # the old name still works
    assert out.returncode == 0, out.stderr
    assert "market.trades" in out.stdout and ": finished" in out.stdout
    assert drain_buffer(settings) == []  # nothing left: nothing twice
    with warehouse(settings) as client:
        rows, keys = table_counts(client, "cb")
        totals = ledger_totals(client, "cb")
        failed = client.query("SELECT count() FROM ops.replay_log WHERE status = 'failed'").result_rows
        assert bad_ledger_minutes(client) == []
    assert rows == keys == totals["inserted"] == totals["replayed"] > 0
    assert failed[0][0] > 0  # the attempt during the outage is logged too


def test_permanent_error_sends_the_refused_rows_to_the_dead_letter(tmp_path):
    import pyarrow as pa

    from dataflows.sink.batches import TRADES, make_batch, rows_table
    from dataflows.sink.writer import Writer
    from feedhouse.core.records import Trade
    from feedhouse.store.ledger import LedgerDelta
    from feedhouse.store.migrations import init_schema

    settings = make_settings(tmp_path)
    init_schema(settings)
    t0 = 1_700_000_000_000_000
    rows = [Trade("kraken", "XMR-USD", "XMR/USD", str(i), 1.0, 1.0, "buy", t0, t0) for i in range(6)]
    good = rows_table(TRADES, rows, {"feed": "kr"})
    # a column the table does not have: ClickHouse refuses the insert (not retryable)
    bad = good.append_column("bogus", pa.array([1] * 6))
    ledger = LedgerDelta()
    writer = Writer(settings)
    try:
        assert writer.write(make_batch(TRADES, "kr", "t-good", good), ledger) == "inserted"
        assert writer.write(make_batch(TRADES, "kr", "t-bad", bad), ledger) == "rejected"
    finally:
        writer.close()
    assert ledger.total("inserted") == 6 and ledger.total("rejected") == 6
    with warehouse(settings) as client:
        dead = client.query("SELECT feed, raw, error FROM ops.dead_letter").result_rows
        assert client.query("SELECT count() FROM market.trades").result_rows[0][0] == 6
    assert len(dead) == 6
    assert all(f == "kr" and "bogus" in raw and "refused" in err for f, raw, err in dead)


def test_a_gathering_feed_partition_inserts_by_age_not_per_batch(tmp_path):
    """A gather window (an MQTT feed's mqtt.flush_ms): after a quiet spell the first rows
    go at once; under a steady stream the partition hands the committer one job per
    window, not one per micro-batch or tick, and everything is stored once the epoch
    snapshots."""
    settings = make_settings(tmp_path)
    init_schema(settings)
    _, parsed = deduped_coinbase(3000, per=50)
    part = FeedSinkPartition("cb", settings, GatherWindow(0.25, 0.25, 10_000))
    try:
        part.write_batch([parsed[0]])  # quiet feed: at once
        assert not part.pending
        started = time.monotonic()
        for p in parsed[1:]:  # ~60 batches and ticks over ~0.6 s
            part.write_batch([p, tick("cb")])
            time.sleep(0.01)
        jobs = len(part.jobs)
        assert 2 <= jobs <= 1 + int((time.monotonic() - started) / 0.25) + 1
        part.snapshot()
    finally:
        part.close()
    with warehouse(settings) as client:
        rows, keys = table_counts(client, "cb")
    assert rows == keys == sum(len(p.trades) + len(p.quotes) for p in parsed) > 0


def test_a_busy_gathering_partition_widens_its_window_to_the_cap_and_a_quiet_ones_row_goes_at_once(
        tmp_path):
    """The window grows with the feed's rate (mqtt.flush_max_ms, flush_grow_from): a
    stream at >10x flush_grow_from is handed over every flush_ms for its first second,
    then every flush_max_ms; after a quiet spell a row still goes at once."""
    settings = make_settings(tmp_path)
    init_schema(settings)
    _, parsed = deduped_coinbase(9946, per=50)  # ~200 batches, ~214 rows
    part = FeedSinkPartition("cb", settings, GatherWindow(0.05, 0.25, grow_from=5))
    try:
        part.write_batch([parsed[0]])  # quiet feed: at once
        assert not part.pending
        flushes, started = [], time.monotonic()
        for p in parsed[1:]:  # ~2.5 s, ~100 rows/s
            part.write_batch([p, tick("cb")])
            if len(part.jobs) > len(flushes) + 1:
                flushes.append(time.monotonic() - started)
            time.sleep(0.0125)
        gaps = [b - a for a, b in zip(flushes, flushes[1:], strict=False)]
        early = [g for g, t in zip(gaps, flushes[1:], strict=False) if t < 0.9]
        late = [g for g, t in zip(gaps, flushes[1:], strict=False) if t > 1.6]
        assert part.gather.seconds == 0.25
        assert early and sorted(early)[len(early) // 2] < 0.15  # flush_ms (0.05) at first
        assert late and min(late) >= 0.25  # then the cap
        part.snapshot()
        deadline = time.monotonic() + 30
        while not part.committer.idle:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.3)  # quiet for longer than the window
        part.write_batch([parsed[1]])
        assert not part.pending  # at once, not after the grown window
    finally:
        part.close()


def test_a_snapshot_carries_the_unproven_ledger_batch_and_a_resumed_run_counts_it_once(tmp_path):
    """The epoch's ledger batch is submitted without waiting for it: the snapshot carries
    it until the next drain proves it written. A run resumed from that snapshot submits
    it again under the same token: counted once whether the first one landed or not."""
    settings = make_settings(tmp_path)
    init_schema(settings)
    messages, parsed = deduped_coinbase(1000, per=100)
    STATS.reset()
    part = FeedSinkPartition("cb", settings)
    try:
        part.write_batch(parsed)
        state = part.snapshot()
        assert state is not None  # the ledger batch of this epoch, not yet proven
        token, delta = state
        assert delta.total("received") == len(messages)
        assert STATS.totals["cb"]["received"] == 0  # the live status counts proven ones
        # a quiet pipeline: once the committer is idle the next snapshot proves the batch
        # without waiting, and the live status shows the epoch
        deadline = time.monotonic() + 30
        while not part.committer.idle:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert part.snapshot() is None
        assert STATS.totals["cb"]["received"] == len(messages)
    finally:
        part.close()
    assert part.unconfirmed is None
    for _ in range(2):  # two runs resumed from that snapshot (it had landed)
        resumed = FeedSinkPartition("cb", settings, resume_state=state)
        resumed.close()
    with warehouse(settings) as client:
        totals = ledger_totals(client, "cb")
        rows, keys = table_counts(client, "cb")
    assert totals["received"] == len(messages)  # counted once
    assert totals["inserted"] == keys == rows > 0

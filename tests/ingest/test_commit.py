"""Group commit: batches queued together go in as one insert per table; a combined insert
that had to be buffered replays as that same insert, under its token; the committer
thread pushes back when its queue is full and hands its errors to the dataflow."""

from __future__ import annotations

import threading
import time

import pytest

from dataflows.sink.batches import TRADES, combine
from dataflows.sink.committer import Committer, Job
from dataflows.sink.writer import Writer, drain_buffer
from feedhouse.store.client import warehouse
from feedhouse.store.faults import write_faults
from feedhouse.store.ledger import LedgerDelta
from tests.ingest.test_buffer import trades_batch


@pytest.fixture
def settings(sink_settings):
    return sink_settings


def three_feeds() -> list:
    """One batch per feed, disjoint trade ids."""
    return [trades_batch(f"feed{i}:0:{TRADES}:0-9:x", 10, start=100 * i) for i in range(3)]


def stored(settings) -> tuple[int, int]:
    with warehouse(settings) as client:
        return client.query(
            "SELECT count(), uniqExact(trade_id) FROM market.trades"
        ).result_rows[0]


def test_batches_written_together_are_one_insert_and_count_in_their_own_ledger(settings):
    ledgers = [LedgerDelta() for _ in range(3)]
    writer = Writer(settings)
    try:
        outcomes = writer.write_many(list(zip(three_feeds(), ledgers, strict=True)))
        assert writer.inserts == 1
    finally:
        writer.close()
    assert outcomes == ["inserted"] * 3
    assert [ledger.total("inserted") for ledger in ledgers] == [10, 10, 10]
    assert stored(settings) == (30, 30)


def test_a_buffered_combined_insert_replays_as_one_insert_under_its_token(settings):
    parts = three_feeds()
    ledger = LedgerDelta()
    write_faults(settings.fault_file, outage=True)
    writer = Writer(settings)
    try:
        assert writer.write_many([(b, ledger) for b in parts]) == ["buffered"] * 3
        entries = writer.buffer.pending()
    finally:
        writer.close()
    assert ledger.total("buffered") == 30
    token = combine(parts).token
    assert [e.group for e in entries] == [token] * 3
    write_faults(settings.fault_file, outage=False)
    # the combined insert had landed although the call failed (a server timing out after
    # the write): replaying the group must store nothing twice
    writer = Writer(settings)
    try:
        writer.insert_once(combine(parts))
    finally:
        writer.close()
    reports = drain_buffer(settings)
    assert sum(r.rows for r in reports) == 30 and {r.status for r in reports} == {"finished"}
    assert stored(settings) == (30, 30)


class _GatedWriter:
    """Stands in for Writer in the committer's own unit tests: write_many waits for
    `gate`, then fails if told to."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.fail: Exception | None = None
        self.rounds: list[int] = []
        self.closed = False

    def write_many(self, items):
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.rounds.append(len(items))
        return ["inserted"] * len(items)

    def close(self) -> None:
        self.closed = True


def _wait_rounds(writer, n: int, timeout_s: float = 30.0) -> None:
    """Until the writer has run `n` commit rounds."""
    deadline = time.monotonic() + timeout_s
    while len(writer.rounds) < n:
        assert time.monotonic() < deadline, f"{len(writer.rounds)} of {n} rounds"
        time.sleep(0.002)


def test_committer_takes_every_queued_job_in_one_round_and_pushes_back_when_full():
    writer = _GatedWriter()
    committer = Committer(writer, max_queued_rows=25)
    try:
        committer.submit(Job([trades_batch("a", 10)]))  # taken at once, held at the gate
        time.sleep(0.2)
        committer.submit(Job([trades_batch("b", 10)]))
        committer.submit(Job([trades_batch("c", 10)]))  # 20 queued: still room
        blocked = threading.Thread(target=committer.submit, args=(Job([trades_batch("d", 10)]),))
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive()  # 30 > 25 rows queued: the dataflow waits
        writer.gate.set()
        blocked.join(5)
        assert not blocked.is_alive()
        committer.drain()
        assert writer.rounds[:2] == [1, 2] and sum(writer.rounds) == 4
    finally:
        writer.gate.set()
        committer.close()
    assert writer.closed


def test_a_committer_failure_stops_the_dataflow_at_its_next_call():
    writer = _GatedWriter()
    writer.fail = OSError("disk full")
    writer.gate.set()
    committer = Committer(writer, max_queued_rows=100)
    committer.submit(Job([trades_batch("a", 10)]))
    with pytest.raises(RuntimeError, match="committer stopped.*disk full"):
        committer.drain()
    with pytest.raises(RuntimeError, match="disk full"):
        committer.submit(Job([trades_batch("b", 10)]))


def test_adaptive_linger_idle_rows_go_at_once_busy_rows_wait_for_company():
    writer = _GatedWriter()
    writer.gate.set()
    # a linger far above scheduling delays on a loaded machine: 'at once' is well under it
    committer = Committer(writer, max_queued_rows=100, target_rows=30, linger_s=1.5)
    try:
        started = time.monotonic()
        committer.submit(Job([trades_batch("a", 10)]))  # quiet committer: at once
        _wait_rounds(writer, 1)
        assert time.monotonic() - started < 1.0
        # right after a round: the next rows wait (up to linger_s) for more
        committer.submit(Job([trades_batch("b", 10)]))
        time.sleep(0.3)
        assert writer.rounds == [1]
        committer.submit(Job([trades_batch("c", 10)]))
        _wait_rounds(writer, 2)
        waited = time.monotonic() - started
        assert writer.rounds == [1, 2] and 1.4 < waited < 5.0  # b and c: one round
        # target_rows queued: the round starts without waiting out the linger
        t = time.monotonic()
        for name in ("d", "e", "f"):
            committer.submit(Job([trades_batch(name, 10)]))
        _wait_rounds(writer, 3)
        assert time.monotonic() - t < 1.0 and writer.rounds[2] == 3
        # drain() (the epoch snapshot) does not wait out the linger either
        committer.submit(Job([trades_batch("g", 10)]))
        t = time.monotonic()
        committer.drain()
        assert time.monotonic() - t < 1.0 and writer.rounds[3] == 1
    finally:
        committer.close()


def test_below_linger_from_rows_rounds_go_back_to_back_above_it_they_wait_for_company():
    writer = _GatedWriter()
    writer.gate.set()
    committer = Committer(writer, max_queued_rows=1000, target_rows=500, linger_s=1.5,
                          linger_from_rows=25)
    try:
        committer.submit(Job([trades_batch("a", 10)]))  # quiet: at once
        _wait_rounds(writer, 1)
        # the last round carried 10 rows (< 25): light load, no linger right after it
        t = time.monotonic()
        committer.submit(Job([trades_batch("b", 10)]))
        _wait_rounds(writer, 2)
        assert time.monotonic() - t < 1.0
        writer.gate.clear()  # hold the next round so 30 rows queue into one
        committer.submit(Job([trades_batch("c", 10)]))
        time.sleep(0.2)
        for name in ("d", "e", "f"):
            committer.submit(Job([trades_batch(name, 10)]))
        writer.gate.set()
        _wait_rounds(writer, 4)
        assert writer.rounds[2:] == [1, 3]  # c alone (in flight), then d-f: 30 rows
        # the last round carried 30 rows (>= 25): the next rows wait for company
        t = time.monotonic()
        committer.submit(Job([trades_batch("g", 10)]))
        time.sleep(0.3)
        assert len(writer.rounds) == 4
        _wait_rounds(writer, 5)
        assert time.monotonic() - t > 1.0
    finally:
        committer.close()


def test_the_linger_counts_from_the_oldest_row_so_the_sinks_gathering_does_not_add_up():
    """A job whose rows the sink gathered for a while (`Job.oldest`) waits only what is
    left of the linger after its oldest row, not a full linger from its submission."""
    writer = _GatedWriter()
    writer.gate.set()
    committer = Committer(writer, max_queued_rows=1000, target_rows=1000, linger_s=1.5)
    try:
        committer.submit(Job([trades_batch("a", 10)]))  # quiet: at once
        _wait_rounds(writer, 1)
        # right after a round, rows gathered 1.2 s ago: 0.3 s left of the linger
        t = time.monotonic()
        committer.submit(Job([trades_batch("b", 10)], oldest=t - 1.2))
        _wait_rounds(writer, 2)
        assert time.monotonic() - t < 1.0
        # rows that came after the committer had been quiet for a linger go at once
        time.sleep(1.6)
        t = time.monotonic()
        committer.submit(Job([trades_batch("c", 10)], oldest=t - 0.05))
        _wait_rounds(writer, 3)
        assert time.monotonic() - t < 1.0
    finally:
        committer.close()


def test_a_job_with_a_shorter_linger_cuts_the_round_short_and_zero_goes_at_once():
    """Per-job linger (MQTT feeds gather in the sink and submit with linger 0): a job that
    may not wait starts the round at once, taking the lingering jobs with it."""
    writer = _GatedWriter()
    writer.gate.set()
    committer = Committer(writer, max_queued_rows=1000, target_rows=1000, linger_s=5.0)
    try:
        committer.submit(Job([trades_batch("a", 10)]))  # quiet: at once
        _wait_rounds(writer, 1)
        committer.submit(Job([trades_batch("b", 10)]))  # right after a round: lingers 5 s
        time.sleep(0.1)
        assert writer.rounds == [1]
        t = time.monotonic()
        committer.submit(Job([trades_batch("c", 10)], linger_s=0.0))
        _wait_rounds(writer, 2)
        assert time.monotonic() - t < 0.5 and writer.rounds == [1, 2]  # b rode along with c
        t = time.monotonic()
        committer.submit(Job([trades_batch("d", 10)], linger_s=0.0))  # first in the queue
        _wait_rounds(writer, 3)
        assert time.monotonic() - t < 0.5
    finally:
        committer.close()

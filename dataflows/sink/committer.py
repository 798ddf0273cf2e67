"""Group commit: one thread writes the ingest's insert batches while the dataflow reads on.

An embedded chDB insert costs 15-25 ms whatever its size (measured from 1 to 5,000 rows
into market.trades), so inserting each feed's batches in turn on the dataflow's thread
made every row wait for all other feeds' inserts, and the sources went unread meanwhile.
Here the sink partitions `submit()` jobs (batches plus the ledger delta to count their
outcome in) and carry on; the committer takes every job queued meanwhile and writes them
with `Writer.write_many`: one insert per table for all feeds. A row waits for the insert
in flight, then for its own.

Adaptive batching: a job whose rows came while the committer had been quiet for `linger_s`
is written at once (an idle pipeline: one row goes in alone). Right after a round, the
next waits until `linger_s` after its oldest row reached the sink (`Job.oldest`: the time
the sink gathered it counts, the two waits do not add up), or until `target_rows` are
queued, so under load each insert carries more rows and the fixed cost of an insert
(~5-6 ms CPU embedded, measured: docs/performance.md) is paid fewer times per second.
With `linger_from_rows`, rounds wait for company only once a round carried that many
rows: at low rates the cores are idle enough that every row goes at once (the latency
budget is the tight one), and under load the rounds grow (the CPU is).
A job may carry its own linger (`Job.linger_s`): the round then starts at the earliest of
the queued jobs' deadlines, so a feed kind allowed to wait longer never delays another.
Queued jobs are one round: at most one insert per table waits behind the one in flight.
`drain()` (the epoch snapshot) and `call()` cut the wait short.

`drain()` returns once everything submitted is written (inserted, buffered or
dead-lettered): the sink's snapshot calls it before Bytewax lets a source acknowledge.
The committer owns its Writer: every use of the warehouse client and the local buffer
(replay probes, handing the embedded store to another process) runs on its thread,
through `housekeeping` after each round and when idle, and `call()`. An unexpected error
on that thread is raised again by the next `submit()` or `drain()`, so the dataflow stops
without acknowledging what was not written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from dataflows.sink.batches import Batch
from dataflows.sink.writer import Writer
from feedhouse.store.ledger import LedgerDelta

log = logging.getLogger("dataflows.sink.committer")


@dataclass
class Job:
    """Batches to write together; their outcomes count in `ledger` (on the committer's
    thread: read it only after `drain()`)."""

    batches: list[Batch]
    on_written: Callable[[list[str]], None] | None = None  # outcomes, committer thread
    ledger: LedgerDelta = field(default_factory=LedgerDelta)
    submitted: float = 0.0  # time.monotonic() when submitted
    # time.monotonic() when its oldest row reached the sink (0: when submitted): the
    # linger counts from there, so a row the sink gathered for a while does not wait
    # out a full linger on top of that
    oldest: float = 0.0
    # how long this job may wait for company after a round (None: the committer's
    # linger_s); a feed kind whose rows may wait longer (MQTT: `mqtt.flush_ms`) gets
    # fewer, larger inserts, and a job with a shorter wait queued beside it cuts it short
    linger_s: float | None = None

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)


class Committer:
    def __init__(
        self,
        writer: Writer,
        *,
        max_queued_rows: int,
        max_queued_jobs: int = 64,
        housekeeping: Callable[[Writer], None] | None = None,
        idle_s: float = 0.1,
        linger_s: float = 0.0,
        target_rows: int | None = None,
        linger_from_rows: int = 0,
    ) -> None:
        self.writer = writer
        # submit() blocks beyond either bound (backpressure): rows bound memory, jobs bound
        # how far the dataflow runs ahead when messages carry few rows (book updates)
        self.max_queued_rows = max_queued_rows
        self.max_queued_jobs = max_queued_jobs
        self.housekeeping = housekeeping
        self.idle_s = idle_s
        self.linger_s = linger_s
        self.target_rows = target_rows or max_queued_rows
        # lingering starts once a round carried this many rows: below it the rate is low,
        # so each row goes at once (latency); above it, rounds wait for company (CPU)
        self.linger_from_rows = linger_from_rows
        self._last_round_rows = 0
        self._last_round_end = -float("inf")
        self._hurry = 0  # drain()/call() waiting: no lingering
        self.rounds = 0
        self._cond = threading.Condition()
        self._jobs: list[Job] = []
        self._calls: list[tuple[Callable[[Writer], object], Future]] = []
        self._queued_rows = 0
        self._busy = False
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="feedhouse-committer", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Nothing queued or being written: a job submitted now is written at once (or,
        right after a round, waits at most linger_s for company)."""
        return not self._busy and not self._jobs

    # --- the dataflow's side ----------------------------------------------------------------
    def submit(self, job: Job) -> None:
        rows = job.rows
        with self._cond:
            while self._jobs and (self._queued_rows + rows > self.max_queued_rows
                                  or len(self._jobs) >= self.max_queued_jobs):
                self._raise_if_failed()
                self._cond.wait(1.0)
            self._raise_if_failed()
            job.submitted = time.monotonic()
            job.oldest = min(job.oldest or job.submitted, job.submitted)
            self._jobs.append(job)
            self._queued_rows += rows
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until every submitted job is written."""
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()
            try:
                while self._jobs or self._calls or self._busy:
                    self._raise_if_failed()
                    self._cond.wait(1.0)
                self._raise_if_failed()
            finally:
                self._hurry -= 1

    def call(self, fn: Callable[[Writer], object]) -> object:
        """Run `fn(writer)` on the committer's thread after what is queued; its result."""
        future: Future = Future()
        with self._cond:
            self._raise_if_failed()
            self._calls.append((fn, future))
            self._cond.notify_all()
        return future.result()

    def close(self) -> None:
        """Write what is queued, stop the thread, close the Writer."""
        try:
            self.drain()
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._thread.join(timeout=60)
            self.writer.close()

    def abandon(self) -> None:
        """Stop without writing what is queued (its dataflow aborted, nothing was acked)."""
        with self._cond:
            self._jobs, self._queued_rows, self._stopping = [], 0, True
            self._cond.notify_all()
        self._thread.join(timeout=60)
        self.writer.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the ClickHouse committer stopped: {self._error!r}") from self._error

    # --- the committer's thread -------------------------------------------------------------
    def _linger(self) -> None:
        """Under the lock, jobs queued: right after a round, wait for more rows (up to
        linger_s from the oldest job's submission, or target_rows queued)."""
        if not self._jobs:
            return
        first = self._jobs[0]
        linger = self.linger_s if first.linger_s is None else first.linger_s
        if linger <= 0 or first.oldest - self._last_round_end >= linger:
            return  # the committer was quiet: an idle pipeline's row goes at once
        if first.linger_s is None and self._last_round_rows < self.linger_from_rows:
            return  # light load (small rounds): rows go at once, the cores are there
        deadline = self._deadline()
        while (self._queued_rows < self.target_rows and not self._calls
               and not self._hurry and not self._stopping):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)
            deadline = self._deadline()  # a job with a shorter linger may have come

    def _deadline(self) -> float:
        """The earliest of the queued jobs' linger deadlines (from their oldest rows)."""
        default = self.linger_s
        return min(job.oldest + (default if job.linger_s is None else job.linger_s)
                   for job in self._jobs)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not (self._jobs or self._calls or self._stopping):
                    self._cond.wait(self.idle_s)
                self._linger()
                if self._stopping and not (self._jobs or self._calls):
                    return
                jobs, self._jobs = self._jobs, []
                if jobs:
                    self._last_round_rows = self._queued_rows
                calls, self._calls = self._calls, []
                self._queued_rows = 0
                self._busy = True
                self._cond.notify_all()  # room again for submit()
            try:
                if jobs:
                    self._write(jobs)
                for fn, future in calls:
                    try:
                        future.set_result(fn(self.writer))
                    except Exception as exc:
                        future.set_exception(exc)
                if self.housekeeping is not None:
                    self.housekeeping(self.writer)
            except BaseException as exc:
                log.exception("ClickHouse committer failed")
                for _, future in calls:
                    if not future.done():
                        future.set_exception(exc)
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._busy = False
                if jobs:
                    self.rounds += 1
                    self._last_round_end = time.monotonic()
                self._cond.notify_all()

    def _write(self, jobs: list[Job]) -> None:
        items = [(batch, job.ledger) for job in jobs for batch in job.batches]
        outcomes = iter(self.writer.write_many(items))
        for job in jobs:
            mine = [next(outcomes) for _ in job.batches]
            if job.on_written is not None:
                job.on_written(mine)

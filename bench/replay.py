"""Buffer replay: draining the DuckDB local buffer into chDB (`feedhouse replay`'s code).

Per repeat: a fresh store (schema applied), the buffer filled with N trade rows in the
sink's batch size (trades of the looped real captures, ids shifted per lap), then
`dataflows.sink.drain.drain_buffer(settings)` timed on the wall clock: rows replayed per
second, each batch inserted with its dedup token, ledger and replay log written, then
deleted from the buffer. Filling the buffer is not timed.
`replay_cpu_us_per_row` is the same drains' CPU time (this process, all threads: chDB's
and DuckDB's included) per row: on a shared machine the wall clock says how loaded it
was, CPU time what the drain costs. 500k rows/s needs at most 2 us/row on the wall
clock; the drain's two threads (reading ahead, inserting) can overlap on two cores.
Per-stage costs: `python -m bench.replay_stages`.
"""

from __future__ import annotations

import os
import time

from bench.common import (
    NORMALIZE_CAPTURES,
    Config,
    Figure,
    corpus,
    measured,
    module_command,
    set_aside,
)

GOAL = ">= 500,000"
CPU_GOAL = "<= 2.0"
CAPTURES = ("binance_futures", "okx", "coinbase")


def trade_rows(n: int) -> list:
    from dataflows.venues import get_venue

    rows: list = []
    per = n // len(CAPTURES) + 1
    for name in CAPTURES:
        messages = corpus(NORMALIZE_CAPTURES[name], per, trades_only=True)
        rows.extend(get_venue(name).parse_many(messages).trades[:per])
    return rows[:n]


def fill(settings, rows: list, batch_rows: int) -> int:
    from dataflows.sink.batches import TRADES, make_batch, rows_table
    from dataflows.sink.buffer import LocalBuffer

    with LocalBuffer(settings.buffer_path) as buf:
        for i in range(0, len(rows), batch_rows):
            chunk = rows[i : i + batch_rows]
            data = rows_table(TRADES, chunk, {"feed": "bench"})
            buf.put(make_batch(TRADES, "bench", f"bench:{i}", data))
        return buf.pending_rows


def run(cfg: Config) -> list[Figure]:
    from dataflows.sink.writer import drain_buffer
    from feedhouse.core.config import load_settings
    from feedhouse.store.client import warehouse
    from feedhouse.store.migrations import init_schema

    rows = trade_rows(cfg.replay_rows)
    rates, cpu = [], []
    batch_rows = 5000
    for r in range(min(cfg.repeats, 2)):
        home = cfg.workdir / f"replay{r}"
        set_aside(home)
        settings = load_settings(home=str(home), recovery=False)
        batch_rows = settings.sink.batch_rows
        init_schema(settings)
        pending = fill(settings, rows, batch_rows)
        started, cpu_started = time.perf_counter(), time.process_time()
        reports = drain_buffer(settings)
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        replayed = sum(x.rows for x in reports if x.table == "market.trades")
        with warehouse(settings) as client:
            stored = client.query("SELECT count() FROM market.trades").result_rows[0][0]
        if not replayed == stored == pending == len(rows):
            raise RuntimeError(f"replayed {replayed}, stored {stored}, buffered {pending}")
        rates.append(round(replayed / elapsed))
        cpu.append(round(cpu_s / replayed * 1e6, 3))
        set_aside(home)
    shown = {"rows": len(rows), "batch_rows": batch_rows, "store": "chdb (embedded)",
             "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    command = module_command("replay", cfg)
    return [measured("replay_rows_per_s", "rows/s", command, rates, goal=GOAL,
                     settings={**shown, "clock": "wall"}),
            measured("replay_cpu_us_per_row", "us/row", command, cpu, goal=CPU_GOAL,
                     settings={**shown, "clock": "process CPU"})]

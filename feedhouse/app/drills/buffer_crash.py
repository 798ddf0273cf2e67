"""`feedhouse drill buffer-crash`: SIGKILL while rows sit in the DuckDB buffer, restart.

`feedhouse run` ingests the looping replay server into a fresh chDB store; then the fault
injector makes ClickHouse unreachable, so the sink writes its batches to the local DuckDB
buffer. Once the buffer holds `--min-buffered` rows the run is SIGKILLed. The drill reads
what the buffer holds (rows and trade keys per table), restores ClickHouse and starts the
run again: it must replay the buffer once and carry on from its recovery snapshot. Then
the server stops, the run drains and stops, and the store is checked:

    replayed_rows       = sum(rows) of ops.replay_log for market.trades
    buffered_rows       = trade rows the buffer held at the kill
    buffered_keys_missing = buffered trades not in market.trades

ok when replayed_rows == buffered_rows (each buffered row inserted exactly once, logged
once), the buffer is empty, no buffered trade is missing, nothing sent is lost and
nothing is stored twice (after OPTIMIZE FINAL).
The derived candles must agree with their source too: for every venue, symbol and minute
closed when the run was asked to stop, market.ohlcv_1m's `trades` and `volume` equal the
count() and sum(amount) of the distinct trades (a re-inserted batch must not count twice).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from dataflows.sink.buffer import LocalBuffer
from feedhouse.app.drills.options import DUP_OPTION, RATE_OPTION, STORE_OPTION, seconds_option
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.served import max_positions, wait_caught_up
from feedhouse.app.drills.verdict import verdict
from feedhouse.store.client import warehouse

TRADES = "market.trades"


def buffered_trades(buffer_path: Path) -> tuple[int, set[tuple]]:
    """(trade rows, trade keys) the local buffer holds."""

    rows, keys = 0, set()
    with LocalBuffer(buffer_path) as buf:
        for entry in buf.pending():
            if entry.table == TRADES:
                rows += entry.rows
                data = buf.load(entry).data.select(["venue", "symbol", "trade_id"])
                keys |= set(zip(*(c.to_pylist() for c in data.columns), strict=True))
    return rows, keys


def run_buffer_crash_drill(
    seconds: float = 20.0,
    min_buffered: int = 20_000,
    rate: float = 0.0,
    dup: float = 0.02,
    store: Path | None = None,
) -> dict:

    caught_up = False
    with DrillRun.fresh("buffer-crash", store) as d:
        server = d.serve(rate=rate, faults=f"dup={dup}")
        settings = d.configure(
            sink={"buffer_after_s": 0.5, "replay_probe_s": 0.5, "retry_max_s": 0.25},
        )
        run = d.run
        run.start().wait_running()
        started = time.monotonic()
        d.faults(outage=True)
        d.echo("ClickHouse unreachable: the sink buffers")
        status = d.status(lambda s: s.get("buffered_rows", 0) >= min_buffered, 120)
        run.kill()
        d.echo(f"SIGKILL with {status.get('buffered_rows', 0)} rows buffered")
        time.sleep(0.2)  # the server notices the dead connection
        sent_before = max_positions(server)
        held_rows, held_keys = buffered_trades(settings.buffer_path)
        d.faults(outage=False)
        d.echo(f"ClickHouse back; restart ({held_rows} trade rows buffered)")
        run.start()
        d.status(lambda s: s.get("replays", 0) >= 1 and s.get("buffered_rows", 1) == 0, 120)
        caught_up = wait_caught_up(server, sent_before)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        d.finish()
    result = {"drill": "buffer-crash", **d.measure(candles=True)}
    with LocalBuffer(settings.buffer_path) as buf:
        left = buf.pending_rows
    with warehouse(settings) as client:
        replayed, replays = client.query(
            "SELECT sum(rows), uniqExact(replay_id) FROM ops.replay_log "
            "WHERE table_name = {t:String}", parameters={"t": TRADES}).result_rows[0]
        stored_keys = set(client.query("SELECT venue, symbol, trade_id FROM market.trades")
                          .result_rows)
    missing = len(held_keys - stored_keys)
    result.update({
        "buffered_rows": held_rows, "replayed_rows": int(replayed or 0), "replays": int(replays),
        "buffered_keys_missing": missing, "buffer_left_rows": left, "run_exit": d.code,
        "caught_up": caught_up, "peak_rss_mb": d.peak_rss_mb, "store": str(d.store),
    })
    result["ok"] = bool(result["ok"] and held_rows > 0 and result["replayed_rows"] == held_rows
                        and missing == 0 and left == 0 and d.code == 0
                        and caught_up)
    d.kept()
    return result


def buffer_crash(
    seconds: float = seconds_option(20),
    min_buffered: int = typer.Option(20_000, "--min-buffered", min=1,
                                     help="rows in the buffer before the SIGKILL"),
    rate: float = RATE_OPTION,
    dup: float = DUP_OPTION,
    store: Path | None = STORE_OPTION,
) -> None:
    """SIGKILL with rows in the local buffer, restart: each buffered row inserted once."""
    verdict(run_buffer_crash_drill(seconds, min_buffered, rate, dup, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("buffer-crash")(buffer_crash)

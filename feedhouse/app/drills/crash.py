"""`feedhouse drill crash`: SIGKILL `feedhouse run` during exchange ingest at load, restart.

The replay server loops trade sessions of three venues (as fast as the pipeline reads,
or `--rate`) with duplicated frames; `feedhouse run` ingests them into a fresh chDB store
with Bytewax recovery on. `--kills` times, evenly spread over `--seconds`, the run is
SIGKILLed and started again at once: it resumes from its last snapshot (dedup window,
and the replay position the exchange source hands the server as `?from=N`). Then the
server stops, the run drains and stops, and the store is checked after
`OPTIMIZE TABLE market.trades FINAL`:

    lost              = unique trades sent - distinct trades stored
    duplicates_stored = rows of market.trades - distinct trades stored

ok when nothing was lost, nothing is stored twice (count() = count() FINAL = distinct),
every kill happened while the run was ingesting, and the ledger reconciles.
The derived candles must agree with their source too: for every venue, symbol and minute
closed when the run was asked to stop, market.ohlcv_1m's `trades` and `volume` equal the
count() and sum(amount) of the distinct trades (a re-inserted batch must not count twice).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feedhouse.app.drills.options import DUP_OPTION, RATE_OPTION, STORE_OPTION, seconds_option
from feedhouse.app.drills.process import received_total
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.served import max_positions, wait_caught_up
from feedhouse.app.drills.verdict import verdict


def run_crash_drill(
    seconds: float = 30.0,
    kills: int = 3,
    rate: float = 0.0,
    dup: float = 0.02,
    store: Path | None = None,
) -> dict:

    killed_while_ingesting = 0
    caught_up = True
    with DrillRun.fresh("crash", store) as d:
        server = d.serve(rate=rate, faults=f"dup={dup}")
        d.configure()
        run = d.run
        run.start().wait_running()
        started = time.monotonic()
        for k in range(1, kills + 1):
            time.sleep(max(0.0, started + seconds * k / (kills + 1) - time.monotonic()))
            # the kill must hit a run that is moving data, not one still starting up
            before = received_total(d.status())
            status = d.status(lambda s, b=before: received_total(s) > b, 30)
            killed_while_ingesting += received_total(status) > before
            run.kill()
            d.echo(f"SIGKILL {k}/{kills} after {time.monotonic() - started:.1f}s; restart")
            time.sleep(0.2)  # the server notices the dead connection
            sent_before = max_positions(server)
            run.start().wait_running()
            caught_up &= wait_caught_up(server, sent_before)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        d.finish()
    result = {"drill": "crash", **d.measure(candles=True), "kills": run.kills,
              "killed_while_ingesting": killed_while_ingesting, "caught_up": caught_up,
              "run_exit": d.code, "peak_rss_mb": d.peak_rss_mb, "store": str(d.store)}
    result["ok"] = bool(result["ok"] and d.code == 0 and killed_while_ingesting == kills
                        and caught_up)
    d.kept()
    return result


def crash(
    seconds: float = seconds_option(30),
    kills: int = typer.Option(3, "--kills", min=1, help="SIGKILLs, spread over the run"),
    rate: float = RATE_OPTION,
    dup: float = DUP_OPTION,
    store: Path | None = STORE_OPTION,
) -> None:
    """SIGKILL the ingest at load and restart it: nothing lost, nothing stored twice."""
    verdict(run_crash_drill(seconds, kills, rate, dup, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("crash")(crash)

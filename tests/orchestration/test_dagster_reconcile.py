"""Reconciliation of buffer replays: the sensor, the job (in process), `feedhouse reconcile`."""

import threading

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from feedhouse.store.client import warehouse
from orchestration.definitions import defs
from orchestration.resources import RESOURCES
from tests.support.cli import run_cli
from tests.support.dagster_seed import (
    REPLAY_ID,
    TRADE_FEED,
    add_replay,
    cli_env,
    command,
    query,
)

RECON = (
    "SELECT replay_id, feed, status, buffered_rows, replayed_rows, table_rows, "
    "arrayMap(m -> toString(m), bad_minutes), explanation FROM ops.reconciliation ORDER BY replay_id"
)


def evaluate_sensor():
    sensor = defs.resolve_sensor_def("replay_log_sensor")
    with build_sensor_context(instance=DagsterInstance.ephemeral(), resources=RESOURCES) as context:
        return sensor(context)


def run_request(request, raise_on_error=True):
    return defs.resolve_job_def("reconcile_replays").execute_in_process(
        run_config=request.run_config, tags=request.tags, raise_on_error=raise_on_error
    )


@pytest.mark.integration
def test_sensor_requests_one_run_per_finished_replay_and_runs_write_ok(seeded):
    add_replay(seeded, "replay-0002", 1, 3)
    result = evaluate_sensor()
    requests = result.run_requests
    assert sorted(r.run_key for r in requests) == [REPLAY_ID, "replay-0002"]
    for request in requests:
        run = run_request(request)
        assert run.success
        assert all(e.passed for e in run.get_asset_check_evaluations())
    rows = query(seeded, RECON)
    assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (REPLAY_ID, TRADE_FEED, "ok", 6, 6, 6, []),
        ("replay-0002", TRADE_FEED, "ok", 3, 3, 3, []),
    ]
    # each replay is reconciled once: nothing left to request
    assert isinstance(evaluate_sensor(), SkipReason)


@pytest.mark.integration
def test_tampered_table_fails_loudly_naming_the_minute(seeded):
    # one replayed trade (minute 10:02) disappears before the reconciliation
    command(seeded, "DELETE FROM market.trades WHERE trade_id = '1016'")
    (request,) = evaluate_sensor().run_requests
    run = run_request(request, raise_on_error=False)
    assert not run.success
    (check,) = run.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["failed_replays"].value[0]["bad_minutes"] == ["2024-01-15 10:02"]
    ((rid, feed, status, buffered, replayed, stored, bad, why),) = query(seeded, RECON)
    assert (rid, status, buffered, replayed, stored, bad) == (
        REPLAY_ID,
        "failed",
        6,
        6,
        5,
        ["2024-01-15 10:02:00"],
    )
    assert "2024-01-15T10:02 (ledger 10, table 9)" in why

    cli = run_cli("reconcile", "--replay-id", REPLAY_ID, **cli_env())
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "failed" in cli.stdout and "10:02" in cli.stdout


def test_sensor_skips_while_the_store_is_busy(seeded):
    held, release = threading.Event(), threading.Event()

    def hold():
        with warehouse(seeded):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        # the holder keeps the store 10 s: a sensor waiting the 30 s default lock timeout
        # would get it after the release and run instead of skipping
        result = evaluate_sensor()
        assert isinstance(result, SkipReason)
        assert "busy" in result.skip_message
    finally:
        release.set()
        holder.join()

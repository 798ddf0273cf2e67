"""Drills `flap`, `slow-sink` and `bad-config` at reduced size, through `feedhouse`."""

from __future__ import annotations

import pytest

from tests.support.cli import run_drill

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_flap_drill_reconnects_records_every_gap_and_loses_nothing(tmp_path):
    verdict = run_drill("flap", "--seconds", "5", "--drop-every", "1.5", "--store",
                        str(tmp_path / "flap"))
    assert verdict["drops"] >= 3  # at least one per feed
    for feed, counts in verdict["per_feed"].items():
        assert counts["gaps"] == counts["drops"] >= 1, feed
        assert counts["reconnects"] >= counts["drops"], feed
    assert verdict["run_alive"] and verdict["run_exit"] == 0 and verdict["tracebacks"] == 0
    assert verdict["lost"] == 0 and verdict["duplicates_stored"] == 0
    assert verdict["stored"] == verdict["unique_sent"] > 0


def test_slow_sink_drill_pushes_back_to_the_source_with_bounded_memory(tmp_path):
    verdict = run_drill("slow-sink", "--seconds", "7", "--store", str(tmp_path / "slow"))
    assert verdict["backpressure"] is True
    # while inserts are slow the sources stop reading (their queues are full), more than
    # before; at max speed the picows client outruns even the normal pipeline, so its
    # queue is often full then too (measured 0.84 paused at load 1, 1.0 when slow)
    assert verdict["source_paused_slow"] >= 0.5
    assert verdict["source_paused_slow"] > verdict["source_paused_normal"]
    assert 0 < verdict["peak_rss_mb"] <= verdict["max_rss_mb"]
    assert verdict["lost"] == 0 and verdict["duplicates_stored"] == 0


def test_bad_config_drill_every_case_one_line_exit_2_nothing_written(tmp_path):
    # reduced: the kinds the issue names (the full battery runs in `drill bad-config`)
    kinds = ("unknown venue", "bad DSN", "unknown host", "unreachable host", "wrong password",
             "missing config", "negative dedup window", "password in the config")
    args = [a for k in kinds for a in ("--case", k)]
    verdict = run_drill("bad-config", *args, "--work-dir", str(tmp_path / "cases"))
    assert verdict["failed"] == []
    names = {r["case"] for r in verdict["results"]}
    assert names == {"unknown venue", "bad DSN scheme", "unknown host (run)",
                     "unreachable host (init)", "wrong password (run)", "wrong password (init)",
                     "missing config file", "negative dedup window",
                     "password in the config file"}
    assert verdict["cases"] == verdict["cases_ok"] == 9
    assert all("setting" in r["message"] or "config file" in r["message"]
               for r in verdict["results"])
    assert all(r["exit"] == 2 for r in verdict["results"])
    # nothing was written beside each case's config file
    for case in (tmp_path / "cases").iterdir():
        assert sorted(p.name for p in case.iterdir()) in ([], ["feedhouse.yaml"])


def test_bad_config_checks_fail_a_command_that_succeeds(tmp_path):
    """The battery's checks can fail: a valid config runs, exits 0 and writes its store."""
    from feedhouse.app.drills.bad_config import Case, run_case

    case = Case("valid config", "error", {"feeds": [{"name": "f", "venue": "okx"}]},
                command=["sql", "SELECT 1"])
    result = run_case(case, tmp_path / "case")
    assert result["ok"] is False and result["exit"] == 0
    assert {"exit_2", "nothing_written"} <= set(result["failed"])

"""Drill `fuzz` (reduced), the mutator it uses, and `feedhouse drill all` over one drill."""

from __future__ import annotations

import random

import orjson
import pytest

from feedhouse.app.drills.mutate import mutate
from tests.support.cli import drill_verdict, run_cli, run_drill

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_mutations_are_deterministic_and_change_the_frame():
    frame = '{"e":"trade","s":"BTCUSDT","t":12,"p":"1.5","q":"2","T":1618000000000}'
    a = [mutate(frame, random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same mutation
    rng = random.Random(5)
    outs = [mutate(frame, rng) for _ in range(300)]
    assert sum(o != frame for o in outs) >= 270
    parsed = 0
    for o in outs:
        try:
            orjson.loads(o)
            parsed += 1
        except orjson.JSONDecodeError:
            pass
    assert 0 < parsed < len(outs)  # both still-JSON (wrong values) and broken text
    assert isinstance(mutate(b"\x1f\x8b\x08\x00abc", rng), bytes)


def test_fuzz_drill_accounts_for_every_message_without_crashing(tmp_path):
    verdict = run_drill("fuzz", "--frames", "150", "--mqtt", "200", "--store",
                        str(tmp_path / "fuzz"))
    assert verdict["crashes"] == 0
    assert verdict["venues"] >= 10 and verdict["feeds_short"] == {}
    ex, mq = verdict["counts"]["exchange"], verdict["counts"]["mqtt"]
    assert ex["received"] == ex["frames_sent"] == 150 * verdict["venues"]
    assert mq["received"] >= mq["published"] == 200
    for c in (ex, mq):
        assert c["adds_up"] and c["received"] == c["with_records"] + c["invalid"] + c["ignored"]
        assert c["invalid"] > 0 and c["dead_letter"] >= c["invalid"]
    assert verdict["dead_letters_without_reason"] == 0 and verdict["ledger_ok"] is True
    assert verdict["lost"] == 0 and verdict["stored"] > 0


def test_drill_all_runs_the_named_drills_and_prints_a_table(tmp_path):
    proc = run_cli("drill", "all", "--quick", "--only", "fuzz", "--work-dir", str(tmp_path),
                   timeout=240)
    verdict = drill_verdict(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verdict["drill"] == "all" and verdict["ok"] is True
    assert [d["drill"] for d in verdict["drills"]] == ["fuzz"]
    assert "feedhouse drills" in proc.stdout
    assert any(line.startswith("│ fuzz") and "│ ok" in line for line in proc.stdout.splitlines())
    assert (tmp_path / "fuzz" / "drill" / "run.log").exists()
    bad = run_cli("drill", "all", "--only", "nosuch")
    assert bad.returncode == 2 and "unknown drill 'nosuch'" in bad.stderr

"""`feedhouse sql` end to end as a subprocess."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.cli import clean_env, run_cli
from tests.support.paths import FEEDHOUSE

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_sql_formats(tmp_path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    as_json = run_cli("sql", "SELECT name FROM system.databases WHERE name IN ('iot','market','ops') ORDER BY name", "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert [json.loads(line)["name"] for line in as_json.stdout.splitlines()] == ["iot", "market", "ops"]
    as_csv = run_cli("sql", "SELECT 1 AS one, 'x' AS two", "--format", "csv", cwd=tmp_path)
    assert as_csv.stdout.splitlines() == ["one,two", "1,x"]
    table = run_cli("sql", "SELECT count() AS n FROM market.trades", cwd=tmp_path)
    assert table.returncode == 0 and "0" in table.stdout


def test_syntax_error_is_one_line(tmp_path) -> None:
    """An error in the user's query: exit 2 (like any bad input), the engine's message
    without what the client appended (`FORMAT Native`) and a long token list cut short."""
    result = run_cli("sql", "SELEC 1", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: Code: 62. DB::Exception: Syntax error")
    assert "FORMAT" not in lines[0] and "more)" in lines[0] and len(lines[0]) < 300


def test_two_sql_commands_at_the_same_moment(tmp_path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    procs = [
        subprocess.Popen([FEEDHOUSE, "sql", "SELECT count() FROM system.tables WHERE database = 'ops'", "--format", "csv"],
                         cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert all(out.splitlines()[1] == "9" for out, _ in outputs)  # the ops tables

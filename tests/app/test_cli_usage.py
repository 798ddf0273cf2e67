"""Usage errors of the `feedhouse` command: click's message and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nosuchcmd"], "No such command 'nosuchcmd'"),
        (["capture", "parse"], "Missing argument 'FILE'"),
        (["sql"], "Missing argument 'QUERY'"),
        (["init", "--bogus"], "No such option: --bogus"),
        (["sql", "--format", "xml", "SELECT 1"], "'xml' is not one of"),
        (["session-server", "--port", "abc"], "--port"),
        (["replay-server", "--port", "abc"], "--port"),  # the old name, an alias
    ],
)
def test_usage_error_exits_2_with_clicks_message(tmp_path, args: list[str], expected: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Usage: feedhouse"), result.stderr
    assert "Error: " in result.stderr, result.stderr
    assert expected.lower() in result.stderr.lower(), result.stderr


def test_no_arguments_prints_help(tmp_path) -> None:
    result = run_cli(cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert "Usage: feedhouse" in result.stdout + result.stderr
    assert result.returncode == 2

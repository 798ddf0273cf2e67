"""Running the `feedhouse` command as a user would: a subprocess with a clean environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.support.paths import FEEDHOUSE


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any FEEDHOUSE_* from the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDHOUSE_")}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120, **env: str):
    """Run the `feedhouse` command as a subprocess; returns CompletedProcess (text).
    It runs in a session of its own: on a timeout the whole group (a drill's broker, ingest
    and workers) is killed, so a hung command leaves no process behind for later tests."""
    with subprocess.Popen([FEEDHOUSE, *args], cwd=cwd, env=clean_env(**env), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from exc
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def drill_verdict(proc) -> dict:
    """The JSON verdict a `feedhouse drill` run printed as its last stdout line."""
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_drill(name: str, *args: str, timeout: float = 240) -> dict:
    """`feedhouse drill NAME ARGS...` as a user runs it; its verdict, once asserted that
    the drill passed (exit 0, ok, the verdict names the drill)."""
    proc = run_cli("drill", name, *args, timeout=timeout)
    verdict = drill_verdict(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verdict["drill"] == name and verdict["ok"] is True, proc.stdout + proc.stderr
    return verdict

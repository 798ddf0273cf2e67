"""`feedhouse drill all`: every drill in sequence, each in its own process, then a table.

Each drill runs as `feedhouse drill NAME ...` (a fresh process: one drill's memory or
failure cannot touch the next) with its full-size defaults, or with the reduced sizes the
test suite uses (`--quick`). Their stores go under `--work-dir`. The table shows each
drill's verdict; the last stdout line is JSON with every verdict; exit 0 only when every
drill was ok.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from feedhouse.app.drills.process import child_env, feedhouse_command
from feedhouse.app.drills.verdict import echo, verdict
from feedhouse.core.errors import InputError

# name -> (full-size arguments, reduced arguments); "{dir}" is the drill's own folder
DRILLS: dict[str, tuple[list[str], list[str]]] = {
    "outage": (["--store", "{dir}"], ["--seconds", "6", "--outage-seconds", "2", "--store", "{dir}"]),
    "mqtt": (["--restart-broker", "--kill-ingest", "--work-dir", "{dir}"],
             ["--rate", "1000", "--seconds", "9", "--devices", "40", "--restart-broker",
              "--kill-ingest", "--work-dir", "{dir}"]),
    "crash": (["--store", "{dir}"], ["--seconds", "6", "--kills", "1", "--store", "{dir}"]),
    "buffer-crash": (["--store", "{dir}"],
                     ["--seconds", "4", "--min-buffered", "1000", "--store", "{dir}"]),
    "flap": (["--store", "{dir}"], ["--seconds", "5", "--drop-every", "1.5", "--store", "{dir}"]),
    "fuzz": (["--store", "{dir}"], ["--frames", "200", "--mqtt", "300", "--store", "{dir}"]),
    "slow-sink": (["--store", "{dir}"], ["--seconds", "7", "--store", "{dir}"]),
    "bad-config": (["--work-dir", "{dir}"], ["--work-dir", "{dir}"]),
    # a few minutes here (the 30-minute run: docs/operations-soak.md)
    "soak": (["--minutes", "2", "--outage-every", "50", "--store", "{dir}"],
             ["--minutes", "0.75", "--rate", "200", "--readings-per-s", "300",
              "--outage-every", "20", "--outage-seconds", "5", "--store", "{dir}"]),
}
COLUMNS = ("sent", "unique_sent", "stored", "duplicates_stored", "dead_lettered", "lost",
           "peak_rss_mb", "rss_slope_mb_per_h")


def run_one(name: str, args: list[str], timeout_s: float) -> dict:
    """Run one drill; its verdict (the JSON last line) plus exit code and duration."""
    started = time.monotonic()
    cmd = feedhouse_command("drill", name, *args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=child_env(), stdin=subprocess.DEVNULL)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = None, str(exc.stdout or ""), f"timed out after {timeout_s:g}s"
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (err.strip().splitlines() or ["no output"])[-1]
        result = {"drill": name, "ok": False, "error": tail[:300]}
    result["exit"] = code
    result["seconds"] = round(time.monotonic() - started, 1)
    result["ok"] = bool(result.get("ok")) and code == 0
    return result


def table(results: list[dict]) -> Table:
    t = Table(title="feedhouse drills")
    t.add_column("drill")
    t.add_column("ok")
    for col in (*COLUMNS, "seconds"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(r.get("drill", "?"), "ok" if r["ok"] else "FAIL",
                  *(_cell(r.get(c)) for c in (*COLUMNS, "seconds")))
    return t


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def drill_all(
    quick: bool = typer.Option(False, "--quick", help="reduced sizes (as the test suite runs)"),
    only: list[str] = typer.Option([], "--only", help="run only these drills (repeatable)"),
    skip: list[str] = typer.Option([], "--skip", help="leave these drills out (repeatable)"),
    work_dir: Path | None = typer.Option(None, "--work-dir", help="drill folders (default: temp)"),
    timeout_s: float = typer.Option(1800, "--timeout", min=10, help="per drill, seconds"),
) -> None:
    """Run every drill in sequence and print a table (sent/stored/lost/duplicates/RSS)."""
    unknown = sorted((set(only) | set(skip)) - set(DRILLS))
    if unknown:
        raise InputError(f"unknown drill {unknown[0]!r} (known: {', '.join(DRILLS)})")
    names = [n for n in DRILLS if (not only or n in only) and n not in skip]
    base = Path(work_dir or tempfile.mkdtemp(prefix="feedhouse-drill-all-")).resolve()
    results = []
    for name in names:
        folder = base / name
        args = [a.replace("{dir}", str(folder)) for a in DRILLS[name][1 if quick else 0]]
        echo("all", f"{name} {' '.join(args)}")
        results.append(run_one(name, args, timeout_s))
        echo("all", f"{name}: {'ok' if results[-1]['ok'] else 'FAIL'} "
             f"({results[-1]['seconds']}s)")
    Console(file=sys.stdout, width=140).print(table(results))
    verdict({"drill": "all", "ok": bool(results) and all(r["ok"] for r in results),
             "quick": quick, "work_dir": str(base), "drills": results})


def register(drill_app: typer.Typer) -> None:
    drill_app.command("all")(drill_all)

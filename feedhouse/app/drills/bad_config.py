"""`feedhouse drill bad-config`: a battery of wrong settings, each must stop cleanly.

Every case runs `feedhouse run` or `feedhouse init` as a subprocess in an empty folder,
with a config whose `home` points at a folder that does not exist yet, and a sentinel
password in every DSN. A case passes when the command

* exits with code 2,
* prints exactly one line on stderr, which names the problem (an expected fragment),
  and no traceback, and never the password,
* wrote nothing: the home folder (store, buffer, recovery) was not created and the
  case's folder holds only its config file.

"Wrong password" needs a server that says so: a tiny HTTP server on loopback answers
every request the way ClickHouse answers a bad password (HTTP 516, AUTHENTICATION_FAILED).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import typer
import yaml

from feedhouse.app.drills.process import child_env, feedhouse_command
from feedhouse.app.drills.verdict import echo, verdict
from feedhouse.app.mqtt.broker import free_port

SENTINEL = "s3ntinel-Pa55"  # the password of every DSN; must never be printed
FEED = {"name": "feed1", "venue": "binance"}
AUTH_BODY = (b"Code: 516. DB::Exception: default: Authentication failed: password is "
             b"incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")


class _Refuse516(BaseHTTPRequestHandler):
    """Answers like a ClickHouse server that rejects the credentials."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(516)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(AUTH_BODY)))
        self.end_headers()
        self.wfile.write(AUTH_BODY)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


class AuthFailServer:
    """`with AuthFailServer() as port:` a loopback 'ClickHouse' refusing every password."""

    def __enter__(self) -> int:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse516)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self.httpd.server_address[1]

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Case:
    name: str
    expect: str  # a fragment the one error line must contain (names the problem)
    config: dict | str | None  # YAML mapping, raw text, or None: no config file at all
    command: list[str] = field(default_factory=lambda: ["run"])
    env: dict[str, str] = field(default_factory=dict)


def cases(auth_port: int, closed_port: int) -> list[Case]:
    def dsn(host_port: str) -> str:
        return f"http://default:{SENTINEL}@{host_port}/default"

    feeds = {"feeds": [FEED]}
    return [
        Case("missing config file", "config file", None),
        Case("config not YAML", "not valid YAML", "feeds: [\n  - name: x\n"),
        Case("unknown setting", "unknown setting", {"wharehouse_dsn": "chdb:///tmp/x", **feeds}),
        Case("unknown venue", "unknown venue 'nosuchex'",
             {"feeds": [{"name": "feed1", "venue": "nosuchex"}]}),
        Case("exchange feed without venue", "needs 'venue'", {"feeds": [{"name": "feed1"}]}),
        Case("duplicate feed names", "feed names must be unique", {"feeds": [FEED, FEED]}),
        Case("negative dedup window", "dedup_window_s",
             {"feeds": [{**FEED, "dedup_window_s": -5}]}),
        Case("negative lateness", "allowed_lateness_s",
             {"feeds": [{**FEED, "allowed_lateness_s": -1}]}),
        Case("MQTT port out of range", "port",
             {"feeds": [{"name": "plant", "kind": "mqtt", "mqtt": {"port": 70000}}]}),
        Case("no feed configured", "feeds", {}),
        Case("unknown feed selected", "no feed named 'nosuch'", feeds,
             command=["run", "--feed", "nosuch"]),
        Case("password in the config file", "holds a password",
             {"warehouse_dsn": dsn("127.0.0.1:8123"), **feeds}),
        Case("bad DSN scheme", "warehouse_dsn", feeds,
             env={"FEEDHOUSE_WAREHOUSE_DSN": f"mysql://default:{SENTINEL}@db/x"}),
        Case("DSN without host", "has no host", feeds,
             env={"FEEDHOUSE_WAREHOUSE_DSN": f"http://default:{SENTINEL}@:8123/x"}),
        Case("missing DSN file", "warehouse_dsn_file",
             {"warehouse_dsn_file": "/nonexistent/feedhouse/dsn", **feeds}),
        Case("bad value in the environment", "sink.batch_rows", feeds,
             env={"FEEDHOUSE_SINK__BATCH_ROWS": "-3"}),
        # credentials come from the environment (a config file may not hold them)
        Case("unknown host (run)", "unknown host", feeds,
             env={"FEEDHOUSE_WAREHOUSE_DSN": dsn("no-such-host.invalid:8123")}),
        Case("unreachable host (init)", "connection refused", feeds, command=["init"],
             env={"FEEDHOUSE_WAREHOUSE_DSN": dsn(f"127.0.0.1:{closed_port}")}),
        Case("wrong password (run)", "authentication failed", feeds,
             env={"FEEDHOUSE_WAREHOUSE_DSN": dsn(f"127.0.0.1:{auth_port}")}),
        Case("wrong password (init)", "authentication failed", feeds, command=["init"],
             env={"FEEDHOUSE_WAREHOUSE_DSN": dsn(f"127.0.0.1:{auth_port}")}),
    ]


def run_case(case: Case, folder: Path, timeout_s: float = 60) -> dict:
    folder.mkdir(parents=True)
    home = folder / "home"
    config = folder / "feedhouse.yaml"
    if isinstance(case.config, dict):
        config.write_text(yaml.safe_dump({"home": str(home), **case.config}))
    elif isinstance(case.config, str):
        config.write_text(case.config)
    env = child_env(**case.env)
    args = feedhouse_command("--config", str(config), *case.command)
    try:
        proc = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = None, str(exc.stdout or ""), str(exc.stderr or "") + " (timed out)"
    lines = [line for line in err.splitlines() if line.strip()]
    left = sorted(p.name for p in folder.iterdir() if p != config)
    checks = {
        "exit_2": code == 2,
        "one_line": len(lines) == 1,
        "names_problem": len(lines) == 1 and case.expect.lower() in lines[0].lower(),
        "no_traceback": "Traceback" not in err + out,
        "no_secret": SENTINEL not in err + out,
        "nothing_written": not home.exists() and not left,
    }
    return {"case": case.name, "command": " ".join(case.command), "exit": code,
            "message": lines[0][:300] if lines else "", "ok": all(checks.values()),
            "failed": [k for k, v in checks.items() if not v], "left": left}


def run_bad_config_drill(work: Path | None = None, jobs: int = 3,
                         only: list[str] | None = None) -> dict:
    base = Path(work or tempfile.mkdtemp(prefix="feedhouse-drill-bad-config-")).resolve()
    base.mkdir(parents=True, exist_ok=True)
    with AuthFailServer() as auth_port:
        battery = [c for c in cases(auth_port, free_port())
                   if not only or any(o.lower() in c.name.lower() for o in only)]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(
                lambda ic: run_case(ic[1], base / f"case{ic[0]:02d}"), enumerate(battery)))
    for r in results:
        echo("bad-config", f"{'ok  ' if r['ok'] else 'FAIL'} {r['case']}: exit {r['exit']}, "
             f"{r['message'] or '(no message)'}" + (f" [{', '.join(r['failed'])}]"
                                                    if r["failed"] else ""))
    failed = [r for r in results if not r["ok"]]
    return {
        "drill": "bad-config", "sent": 0, "unique_sent": 0, "stored": 0,
        "duplicates_stored": 0, "dead_lettered": 0, "lost": 0,
        "cases": len(results), "cases_ok": len(results) - len(failed),
        "failed": [{k: r[k] for k in ("case", "exit", "message", "failed", "left")}
                   for r in failed],
        "results": [{k: r[k] for k in ("case", "command", "exit", "message")} for r in results],
        "work_dir": str(base), "ok": not failed and bool(results),
    }


def bad_config(
    work_dir: Path | None = typer.Option(None, "--work-dir", help="case folders (default: temp)"),
    jobs: int = typer.Option(min(4, os.cpu_count() or 1), "--jobs", min=1,
                             help="cases run at once"),
    case: list[str] = typer.Option([], "--case", help="only cases whose name contains this"),
) -> None:
    """Wrong settings: each stops with exit 2 and one line naming it, writing nothing."""
    verdict(run_bad_config_drill(work_dir, jobs, case))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("bad-config")(bad_config)

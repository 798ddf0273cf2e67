"""`feedhouse run` as a subprocess of a drill (or test), and polling its status file.

`RunProcess` starts, SIGKILLs and stops the ingest by PID and samples its peak RSS;
`wait_for_status` / `wait_quiet` poll the JSON status file the run rewrites every second
(`<home>/run_status.json`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a feedhouse subprocess: the caller's, without any FEEDHOUSE_*
    (the subprocess takes its settings from the drill's config), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDHOUSE_")}
    env.update(extra)
    return env


def feedhouse_command(*args: str) -> list[str]:
    """The `feedhouse` command line with `args`, run by this interpreter."""
    return [sys.executable, "-m", "feedhouse.app.cli.main", *args]


def wait_for_status(path: Path, done: Callable[[dict], bool], timeout_s: float) -> dict:
    """Poll `feedhouse run`'s status file until done(status) or timeout; last status."""
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            status = {}
        if status and done(status):
            break
        time.sleep(0.25)
    return status


def received_total(status: dict) -> int:
    return sum(f.get("received", 0) for f in status.get("feeds", {}).values())


def wait_quiet(status_file: Path, quiet_s: float = 2.0, timeout_s: float = 120) -> dict:
    """Until the run's received count stopped growing for quiet_s and its buffer is empty."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = wait_for_status(status_file, lambda s: True, 5)
        received = received_total(status)
        if received != last or status.get("buffered_rows", 0):
            last, since = received, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.25)
    return status


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process, MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RunProcess:
    """`feedhouse --config CONFIG run [ARGS]` as a subprocess, SIGKILLed/stopped by its PID.

    Output is appended to `log_path`; a watcher thread samples the process's VmHWM so the
    peak over all starts is known even after the process ended. `status_file` is where
    the run writes its status (default: `run_status.json` beside the config, which is the
    run's home in every drill config).
    """

    def __init__(self, config: Path, log_path: Path, args: Sequence[str] = (),
                 status_file: Path | None = None) -> None:
        self.config, self.log_path, self.args = config, log_path, tuple(args)
        self.status_file = status_file or config.parent / "run_status.json"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0
        self.peak_rss_mb = 0.0
        self._watch: threading.Thread | None = None

    def start(self) -> RunProcess:
        self.status_file.unlink(missing_ok=True)  # no stale status from the last start
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                feedhouse_command("--config", str(self.config), "run", *self.args),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env(),
            )
        self.starts += 1
        self._watch = threading.Thread(target=self._sample, args=(self.proc,), daemon=True)
        self._watch.start()
        return self

    def _sample(self, proc: subprocess.Popen) -> None:
        while proc.poll() is None:
            self._note_peak(proc.pid)
            time.sleep(0.2)

    def _note_peak(self, pid: int) -> None:
        peak = vm_hwm_mb(pid)
        if peak is not None:
            self.peak_rss_mb = max(self.peak_rss_mb, peak)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self, done: Callable[[dict], bool] = lambda s: True,
               timeout_s: float = 5) -> dict:
        """The run's status once done(status), or the last one read after timeout_s."""
        return wait_for_status(self.status_file, done, timeout_s)

    def wait_running(self, timeout_s: float = 90) -> dict:
        """Until the run reported its first committed epoch (feeds in its status)."""
        status = self.status(lambda s: bool(s.get("feeds")), timeout_s)
        if not status.get("feeds"):
            raise RuntimeError(f"feedhouse run did not start ingesting: see {self.log_path}")
        return status

    def kill(self) -> None:
        if self.alive:
            self._note_peak(self.proc.pid)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self, timeout_s: float = 120) -> int | None:
        """SIGTERM (the run flushes what it holds); its exit code, None if it had to be killed."""
        if self.proc is None:
            return None
        if self.alive:
            self._note_peak(self.proc.pid)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def tracebacks(self) -> int:
        """Python tracebacks in the run's log (a crash or an unhandled error)."""
        try:
            return self.log_path.read_text(errors="replace").count("Traceback (most recent")
        except OSError:
            return 0

"""Pieces drills share: the replay server's captures, feeds pointing at it, the verdict."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from dataflows.sources.capture import parse_capture, read_capture
from feedhouse.app.sessions import SESSIONS_DIR
from feedhouse.core.errors import InputError
from feedhouse.store.client import warehouse
from feedhouse.store.faults import write_faults
from feedhouse.store.ledger import check_ledger, ledger_totals

CAPTURES = SESSIONS_DIR
# trade-only sessions the replay server shifts per lap (ids, times): every lap is new data
DRILL_CAPTURES = ("BYBIT.ws.25.0", "KRAKEN.ws.48.0", "BITSTAMP.ws.1.0")


def captures_folder(dest: Path, names=DRILL_CAPTURES, source: Path = CAPTURES) -> Path:
    """A folder with only `names` (symlinks), so the replay server loads just those."""
    folder = dest / "captures"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / name
        if not link.exists():
            link.symlink_to(source / name)
    return folder


def server_feeds(server, names=DRILL_CAPTURES, source: Path = CAPTURES) -> list[dict]:
    """Feed settings (dicts) for each capture served by `server`."""

    feeds = []
    for name in names:
        venue, result, _ = parse_capture(source / name)
        symbols = sorted({t.symbol for t in result.trades} | {q.symbol for q in result.quotes})
        feeds.append({"name": venue.name, "venue": venue.name, "url": server.url(name),
                      "symbols": symbols, "channels": ["trades"]})
    return feeds


def recorded_trade_rate(names=DRILL_CAPTURES, source: Path = CAPTURES) -> float:
    """Trades per second of the recordings at their own pace (summed)."""

    total = 0.0
    for name in names:
        times = [e.ts for e in read_capture(source / name) if e.kind == "received"]
        _, result, _ = parse_capture(source / name)
        if len(times) > 1 and times[-1] > times[0]:
            total += len(result.trades) / (times[-1] - times[0])
    return total


def sent_totals(stats: dict) -> dict[str, int]:
    keys = ("frames_sent", "trades_sent", "unique_trades_sent", "duplicates_sent")
    return {k: sum(p[k] for p in stats.values()) for k in keys}


def wait_for_status(path: Path, done, timeout_s: float) -> dict:
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


def verdict(result: dict) -> None:
    """Print the drill's JSON verdict as the last stdout line; exit 1 unless ok."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if not result.get("ok"):
        raise SystemExit(1)


def child_env() -> dict[str, str]:
    """Environment for the pipeline subprocess: the drill's config, not the caller's env."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDHOUSE_")}


# --- shared by the crash, buffer-crash, flap, fuzz and slow-sink drills -----------------


STORE_HELP = ("the chDB store to create (new or empty; default: a new temporary folder); "
              "kept, with the drill's own files in its drill/ folder")


def drill_home(store: Path | None, name: str) -> Path:
    """The drill's working folder (config, captures, buffer, recovery, logs): `drill/` in
    `store`, which is the chDB store itself, so `FEEDHOUSE_WAREHOUSE_DSN=chdb:///STORE`
    opens what the drill left (default: a fresh temporary folder, kept for inspection)."""
    import tempfile

    root = (store or Path(tempfile.mkdtemp(prefix=f"feedhouse-drill-{name}-"))).resolve()
    if root.exists() and any(root.iterdir()):
        raise InputError(f"--store {root} is not empty: the drill needs a fresh store")
    home = root / "drill"
    home.mkdir(parents=True, exist_ok=True)
    return home


def store_of(home: Path) -> Path:
    """The chDB store of the drill working in `home` (see drill_home)."""
    return home.parent


def write_run_config(
    home: Path, feeds: list[dict], file_name: str = "drill.yaml", **extra
) -> Path:
    """A feedhouse.yaml for a pipeline subprocess: state in `home`, fault file beside."""
    import yaml


    fault_file = home / "faults.json"
    write_faults(fault_file, outage=False)
    data = {"home": str(home), "fault_file": str(fault_file), "feeds": feeds, **extra}
    config = home / file_name
    config.write_text(yaml.safe_dump(data))
    return config


def write_drill_config(home: Path, feeds: list[dict], **extra) -> Path:
    """A drill's run config: its store is the --store folder itself (see drill_home)."""
    return write_run_config(home, feeds, warehouse_dsn=f"chdb://{store_of(home)}", **extra)


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
    """`feedhouse run --config CONFIG` as a subprocess, SIGKILLed/stopped by its PID.

    Output is appended to `log_path`; a watcher thread samples the process's VmHWM so the
    peak over all starts is known even after the process ended.
    """

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config, self.log_path = config, log_path
        self.status_file = config.parent / "run_status.json"
        self.proc = None
        self.starts = 0
        self.kills = 0
        self.peak_rss_mb = 0.0
        self._watch = None

    def start(self) -> RunProcess:
        import subprocess
        import threading

        self.status_file.unlink(missing_ok=True)  # no stale status from the last start
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "feedhouse.app.cli.main", "--config", str(self.config), "run"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env(),
            )
        self.starts += 1
        self._watch = threading.Thread(target=self._sample, args=(self.proc,), daemon=True)
        self._watch.start()
        return self

    def _sample(self, proc) -> None:
        while proc.poll() is None:
            peak = vm_hwm_mb(proc.pid)
            if peak is not None:
                self.peak_rss_mb = max(self.peak_rss_mb, peak)
            time.sleep(0.2)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_running(self, timeout_s: float = 90) -> dict:
        """Until the run reported its first committed epoch (feeds in its status)."""
        status = wait_for_status(self.status_file, lambda s: bool(s.get("feeds")), timeout_s)
        if not status.get("feeds"):
            raise RuntimeError(f"feedhouse run did not start ingesting: see {self.log_path}")
        return status

    def kill(self) -> None:
        import signal

        if self.alive:
            peak = vm_hwm_mb(self.proc.pid)
            self.peak_rss_mb = max(self.peak_rss_mb, peak or 0.0)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self, timeout_s: float = 120) -> int | None:
        """SIGTERM (the run flushes what it holds); its exit code, None if it had to be killed."""
        import signal
        import subprocess

        if self.proc is None:
            return None
        if self.alive:
            peak = vm_hwm_mb(self.proc.pid)
            self.peak_rss_mb = max(self.peak_rss_mb, peak or 0.0)
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


def unique_sent_by_venue(server) -> dict[str, int]:
    """Distinct trades the replay server sent intact, per venue (summed over its paths).

    The server counts, per path, distinct (symbol, trade_id) keys as the venue adapter
    parses them, each shifted lap a new key range; corrupted frames (never valid) count
    nothing. Per venue that is the count of distinct (venue, symbol, trade_id) a correct
    pipeline stores, provided a venue's paths serve disjoint trades (one path per venue in
    every drill)."""
    out: dict[str, int] = {}
    for name, st in server.stats().items():
        venue = server.streams[name].venue
        key = venue.name if venue is not None else name
        out[key] = out.get(key, 0) + st["unique_trades_sent"]
    return out


def trade_figures(unique_sent: dict[str, int], stored: dict[str, int],
                  distinct: dict[str, int], rows_before_merge: dict[str, int] | None = None,
                  rejected: dict[str, int] | None = None) -> dict[str, int]:
    """lost / duplicates from per-venue counts (the verdict arithmetic, kept pure).

    found = min(distinct keys stored, unique sent) per venue: at most one stored row per
    sent trade counts. Every other stored row is a duplicate - a second row of one key
    (not merged away) or a trade stored under a second key (an unstable derived trade_id,
    a mis-normalized symbol), which shows as more distinct keys than trades sent. lost:
    sent trades neither stored nor rejected (dead-lettered by the sink). A trade stored
    ONLY under a wrong key cancels out (one lost, one extra): counts cannot see that.
    duplicates_inserted: raw rows before the merge beyond one per key (what
    ReplacingMergeTree removed), for information. ok: nothing lost, no duplicate stored."""
    rejected = rejected or {}
    before = rows_before_merge if rows_before_merge is not None else stored
    venues = set(unique_sent) | set(stored) | set(distinct)
    lost = dup_stored = dup_inserted = found_total = 0
    for v in venues:
        sent_v, keys_v = unique_sent.get(v, 0), distinct.get(v, 0)
        found = min(keys_v, sent_v)
        found_total += found
        lost += max(0, sent_v - rejected.get(v, 0) - keys_v)
        dup_stored += stored.get(v, 0) - found
        dup_inserted += before.get(v, 0) - keys_v
    return {"found": found_total, "lost": lost, "duplicates_stored": dup_stored,
            "duplicates_inserted": dup_inserted, "ok": lost == 0 and dup_stored == 0}


def trade_counts_by_venue(client, optimize: bool = True) -> dict[str, dict[str, int]]:
    """Per venue: rows and distinct keys before the merge, rows after `OPTIMIZE ... FINAL`
    (ReplacingMergeTree's last line of defence against a batch re-sent across a SIGKILL
    under a new insert token)."""
    rows = client.query("SELECT venue, count(), uniqExact(venue, symbol, trade_id) "
                        "FROM market.trades GROUP BY venue").result_rows
    if optimize:
        client.command("OPTIMIZE TABLE market.trades FINAL")
    after = dict(client.query("SELECT venue, count() FROM market.trades GROUP BY venue")
                 .result_rows)
    return {"rows_before_merge": {v: int(n) for v, n, _ in rows},
            "distinct": {v: int(d) for v, _, d in rows},
            "stored": {v: int(n) for v, n in after.items()}}


def measure_trades(settings, sent: dict, unique_by_venue: dict[str, int],
                   optimize: bool = True) -> dict:
    """What the store holds against what the replay server sent (standard verdict fields).

    stored is counted after `OPTIMIZE TABLE market.trades FINAL` (what a user querying
    the table sees once ReplacingMergeTree merged; `optimize=False`: raw rows), and
    duplicates_stored is every stored row beyond one per sent unique trade (see
    trade_figures: that includes a trade stored under a second key, which the merge cannot
    remove). rows_before_merge / duplicates_inserted keep the raw figures for the record."""

    with warehouse(settings) as client:
        counts = trade_counts_by_venue(client, optimize)
        final = client.query("SELECT count() FROM market.trades FINAL").result_rows[0][0]
        dead = client.query("SELECT count() FROM ops.dead_letter").result_rows[0][0]
        bad = [(c.feed, str(c.minute)) for c in check_ledger(client) if not c.ok]
        totals = ledger_totals(client)
    figures = trade_figures(unique_by_venue, counts["stored"], counts["distinct"],
                            counts["rows_before_merge"])
    stored = sum(counts["stored"].values())
    result = {
        "sent": sent["trades_sent"],
        "unique_sent": sent["unique_trades_sent"],
        "stored": stored,
        "duplicates_stored": figures["duplicates_stored"],
        "dead_lettered": int(dead),
        "lost": figures["lost"],
        "duplicates_inserted": figures["duplicates_inserted"],
        "rows_before_merge": sum(counts["rows_before_merge"].values()),
        "final_rows": int(final),
        "ledger_ok": not bad,
        "ledger": totals,
    }
    result["ok"] = bool(
        figures["ok"] and final == stored
        and not bad and sent["unique_trades_sent"] > 0
    )
    if bad:
        result["ledger_bad_minutes"] = bad[:10]
    return result


def echo(drill: str, text: str) -> None:
    """Progress on stderr (stdout's last line is the verdict)."""
    sys.stderr.write(f"drill {drill}: {text}\n")
    sys.stderr.flush()


def max_positions(server) -> dict[str, int]:
    """Highest position the replay server sent, per path."""
    return {name: st["max_pos"] for name, st in server.stats().items()}


def wait_caught_up(server, before: dict[str, int], timeout_s: float = 120) -> bool:
    """After a SIGKILL and restart: until the server sent past `before` on every path.

    Frames the killed run held in memory (its queue) were counted as sent; the restarted
    run asks for them again from its snapshot position (?from=N), and only once it passed
    the old highest position has every trade counted as sent been offered to it again.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = max_positions(server)
        if all(now[name] > pos for name, pos in before.items()):
            return True
        time.sleep(0.2)
    return False


def drain_held(server, status_file: Path, feed_of_path: dict[str, str],
               timeout_s: float = 180) -> bool:
    """Hold the server (nothing new is sent) until the run received every frame sent.

    Stopping the server at once could leave frames in socket buffers when it gives up
    closing: counted as sent, never delivered. Positions, not frames sent, are compared:
    a connection cut while backpressured had frames in flight, which the client asks for
    again. True when the run caught up within timeout_s.
    """
    server.hold()
    want = {feed_of_path[p]: pos + 1 for p, pos in max_positions(server).items()}

    def has_all(status: dict) -> bool:
        feeds = status.get("feeds", {})
        return all(feeds.get(f, {}).get("received", 0) >= n for f, n in want.items())

    return has_all(wait_for_status(status_file, has_all, timeout_s))

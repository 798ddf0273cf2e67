"""`python -m bench`: run every benchmark, print a table, write bench/results/latest.json.

    python -m bench [--tiny] [--only normalize,e2e,...] [--out DIR]

Each module in BENCHMARKS returns figures (bench.common.Figure); one that fails outright
becomes an `unavailable: <error>` figure, so the run always completes and says what is
missing. Results: bench/results/latest.json and a dated copy beside it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    ROOT,
    Config,
    Figure,
    empty_trash,
    machine,
    module_command,
    unavailable,
)

# module -> the figure keys it owns (used for an `unavailable` row when it crashes)
BENCHMARKS = {
    "normalize": ("normalize_trades_per_s", "normalize_ratio_vs_cryptofeed"),
    "dedup": ("dedup_bytes_per_key",),
    "replay": ("replay_rows_per_s", "replay_cpu_us_per_row"),
    "books": ("book_parse_levels_per_s", "book_parse_cpu_us_per_level"),
    "books_e2e": ("book_levels_per_s", "book_cpu_us_per_level"),
    "backfill": ("backfill_rows_per_s", "backfill_native_rows_per_s", "backfill_ratio_vs_native",
                 "backfill_tardis_rows_per_s"),
    "e2e": ("e2e_trades_per_s", "e2e_cpu_us_per_trade"),
    "naive": ("e2e_ratio_vs_naive",),
    "latency": ("tick_to_row_2k_ms", "tick_to_row_10k_ms"),
    "ws_client": ("ws_client_cpu_us_per_frame", "session_server_cpu_us_per_frame"),
    "mqtt": ("mqtt_ingest_cpu_us_per_message", "mqtt_ingest_cpu_us_per_message_at_fixed_rate",
             "mqtt_ingest_core_capacity",
             "mqtt_readings_per_s", "mqtt_lost", "mqtt_latency_ms", "mqtt_ratio_vs_naive",
             "mqtt_batched_readings_per_s", "mqtt_batched_lost"),
}
RESULTS = ROOT / "bench" / "results"


def run_all(cfg: Config, log=print) -> tuple[list[Figure], dict]:
    figures: list[Figure] = []
    context: dict = {}  # modules may pass figures on (naive needs e2e's)
    for name in cfg.only or tuple(BENCHMARKS):
        started = time.monotonic()
        log(f"[bench] {name} ...")
        try:
            module = importlib.import_module(f"bench.{name}")
            got = module.run(cfg, context) if "context" in module.run.__code__.co_varnames \
                else module.run(cfg)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
            traceback.print_exc()
            why = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            got = [unavailable(key, "", module_command(name, cfg), why)
                   for key in BENCHMARKS[name]]
        for fig in got:
            fig.settings.setdefault("seconds", round(time.monotonic() - started, 1))
        figures.extend(got)
        context[name] = got
        log(f"[bench] {name} done in {time.monotonic() - started:.0f} s")
    return figures, machine()


def as_json(figures: list[Figure], info: dict, cfg: Config) -> dict:
    nested: dict = {}
    for fig in figures:
        top, _, sub = fig.key.partition(".")
        if sub:
            nested.setdefault(top, {})[sub] = fig.as_dict()
        else:
            nested[top] = fig.as_dict()
    return {
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.name,
        "machine": info,
        "command": "python -m bench" + (" --tiny" if cfg.name == "tiny" else ""),
        "figures": nested,
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def print_table(figures: list[Figure], info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"feedhouse bench — {info['cores']} cores, commit {info['commit'][:12]}")
    for col in ("figure", "median", "unit", "spread (min–max)", "n", "goal", "met"):
        table.add_column(col, justify="left" if col in ("figure", "unit") else "right",
                         no_wrap=col != "spread (min–max)")
    for fig in figures:
        if fig.unavailable:
            table.add_row(fig.key, "unavailable", "", fig.unavailable[:70], "", fig.goal, "")
            continue
        spread = fig.spread
        met = {True: "yes", False: "NO", None: ""}[fig.met]
        table.add_row(
            fig.key, _fmt(fig.value), fig.unit,
            f"{_fmt(spread[0])}–{_fmt(spread[1])}" if spread else "",
            str(len(fig.repeats) or ""), fig.goal, met,
        )
    Console(width=150).print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--tiny", action="store_true", help="tiny corpora (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated modules: " + ",".join(BENCHMARKS))
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = ap.parse_args(argv)
    only = tuple(m for m in args.only.split(",") if m)
    unknown = [m for m in only if m not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.tiny:
        cfg = Config.tiny(Path(tempfile.mkdtemp(prefix="feedhouse-bench-")))
    else:
        cfg = Config()
    cfg.only = only
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        figures, info = run_all(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        empty_trash()  # after the last measurement: see bench.common.set_aside
    info["bench_seconds"] = round(time.monotonic() - started, 1)
    data = as_json(figures, info, cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1)
    (args.out / "latest.json").write_text(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(text)
    print_table(figures, info)
    print(f"wrote {args.out / 'latest.json'} ({info['bench_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

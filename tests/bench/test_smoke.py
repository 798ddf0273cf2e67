"""The benchmark harness on tiny corpora (seconds), so it does not rot: every benchmark
runs, every key lands in latest.json with its command, settings and machine, and the
figures that are exact (dedup, lost readings, stored rows) are right. Speed figures are
only checked for being there: timing asserts do not belong in tests.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repo, not an installed package
from bench.__main__ import BENCHMARKS, main  # noqa: E402

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

KEYS = (
    "normalize_trades_per_s", "normalize_ratio_vs_cryptofeed", "e2e_trades_per_s",
    "e2e_cpu_us_per_trade", "e2e_ratio_vs_naive", "tick_to_row_2k_ms", "tick_to_row_10k_ms",
    "mqtt_readings_per_s",
    "mqtt_lost", "mqtt_batched_readings_per_s", "mqtt_batched_lost", "dedup_bytes_per_key",
    "replay_rows_per_s", "replay_cpu_us_per_row", "mqtt_ingest_cpu_us_per_message",
    "mqtt_ingest_cpu_us_per_message_at_fixed_rate", "mqtt_ingest_core_capacity",
    "mqtt_latency_ms", "mqtt_ratio_vs_naive", "backfill_rows_per_s", "backfill_ratio_vs_native",
    "backfill_tardis_rows_per_s", "book_parse_levels_per_s", "book_parse_cpu_us_per_level",
    "book_levels_per_s", "book_cpu_us_per_level",
    "ws_client_cpu_us_per_frame", "session_server_cpu_us_per_frame",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--tiny", "--out", str(out)]) == 0
    latest = json.loads((out / "latest.json").read_text())
    dated = [p for p in out.iterdir() if p.name != "latest.json"]
    assert len(dated) == 1 and json.loads(dated[0].read_text()) == latest
    return latest


def _leaves(figures: dict):
    for value in figures.values():
        if "key" in value:
            yield value
        else:
            yield from value.values()


def test_every_figure_is_there_with_how_it_was_made(results) -> None:
    figures = results["figures"]
    assert set(KEYS) <= set(figures)
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["commit"] and machine["python"]
    for fig in _leaves(figures):
        assert fig["command"], fig["key"]
        # measured (median of repeats, spread) or saying why not - never a bare number
        assert not fig["unavailable"], (fig["key"], fig["unavailable"])
        assert fig["median"] is not None and fig["min"] <= fig["median"] <= fig["max"]


def test_per_venue_normalize_and_cryptofeed_ratios(results) -> None:
    figures = results["figures"]
    assert {"binance", "okx", "coinbase", "overall"} <= set(figures["normalize_trades_per_s"])
    ratios = figures["normalize_ratio_vs_cryptofeed"]
    assert {"binance", "binance_futures", "okx", "coinbase"} <= set(ratios)
    for ratio in ratios.values():
        assert ratio["goal"] == ">= 4" and ratio["median"] > 0
        assert ratio["settings"]["cryptofeed"].startswith("2.")


def test_exact_figures(results) -> None:
    figures = results["figures"]
    assert figures["mqtt_lost"]["median"] == 0  # nothing accepted is lost
    assert figures["mqtt_batched_lost"]["median"] == 0
    batched = figures["mqtt_batched_readings_per_s"]["settings"]
    assert batched["readings_per_message"] == 10
    assert all(r["sent_readings"] == 10 * r["sent"] and r["ok"] for r in batched["runs"])
    assert set(figures["mqtt_latency_ms"]) == {"p50", "p99"}
    beside = figures["mqtt_ingest_cpu_us_per_message"]["settings"]["beside_us_per_message"]
    assert set(beside) == {"mosquitto", "load_generator"}  # reported beside the ingest
    naive = figures["mqtt_ratio_vs_naive"]["settings"]["naive"]
    assert naive["received"] == naive["inserted"] == naive["messages_sent"] > 0
    assert 8 <= figures["dedup_bytes_per_key"]["median"] <= 64  # key + time, numpy arrays
    e2e = figures["e2e_trades_per_s"]["settings"]
    assert e2e["stored_equals_unique_sent"] and e2e["unique_trades"] > 0
    for key in ("tick_to_row_2k_ms", "tick_to_row_10k_ms"):
        assert set(figures[key]) >= {
            "p50", "p95", "p99", "receive_to_parsed_p99", "parsed_to_dedup_p99",
            "dedup_to_insert_acked_p99", "server_cpu_share", "ingest_cpu_us_per_trade",
        }
    assert figures["tick_to_row_2k_ms"]["p99"]["settings"]["offered_trades_per_s"] == 200


def test_a_comparison_that_cannot_run_says_unavailable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CRYPTOFEED_PYTHON", str(tmp_path / "no-such-python"))
    assert main(["--tiny", "--only", "normalize", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "latest.json").read_text())["figures"]
    for ratio in figures["normalize_ratio_vs_cryptofeed"].values():
        assert ratio["median"] is None and "no-such-python" in ratio["unavailable"]
    assert figures["normalize_trades_per_s"]["okx"]["median"] > 0  # ours still measured


def test_results_are_git_ignored_but_the_folder_is_kept() -> None:
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "bench/results/*.json" in ignore
    assert (ROOT / "bench" / "results" / ".gitkeep").exists()
    assert set(BENCHMARKS) == {"normalize", "dedup", "replay", "e2e", "naive", "latency",
                               "mqtt", "backfill", "books", "books_e2e", "ws_client"}

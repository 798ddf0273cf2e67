"""Drill `soak` at a short duration, and the slope arithmetic its verdict rests on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedhouse.app.drills.soak_samples import (
    after_warmup,
    growing,
    slope_per_hour,
    summarize,
    warm_slope,
)
from tests.support.cli import run_cli


def test_slope_of_a_straight_line_is_its_rate_per_hour():
    # +1 MB every 60 s = 60 MB/h, whatever the offset
    points = [(t, 500.0 + t / 60) for t in range(0, 1800, 5)]
    assert slope_per_hour(points) == pytest.approx(60.0)
    assert slope_per_hour([(t, 123.0) for t in range(0, 600, 10)]) == pytest.approx(0.0)
    assert slope_per_hour([(t, 900.0 - t / 3600) for t in range(0, 3600, 30)]) == \
        pytest.approx(-1.0)


def test_slope_is_least_squares_not_end_minus_start():
    # a flat series with a spike at the end: least squares weighs every sample
    points = [(float(t), 100.0) for t in range(100)] + [(100.0, 200.0)]
    end_to_end = (200.0 - 100.0) / 100 * 3600
    assert 0 < slope_per_hour(points) < end_to_end / 10


def test_slope_needs_two_distinct_times():
    assert slope_per_hour([]) is None
    assert slope_per_hour([(5.0, 1.0)]) is None
    assert slope_per_hour([(5.0, 1.0), (5.0, 9.0)]) is None


def test_warm_slope_ignores_the_warm_up_half():
    # steep warm-up (the dedup window filling), then flat: the verdict sees flat
    warm = [(float(t), 300.0 + t) for t in range(0, 600, 5)]
    flat = [(float(t), 900.0) for t in range(600, 1205, 5)]
    points = warm + flat
    assert after_warmup(points)[0][0] == 600.0 and after_warmup(points)[-1] == points[-1]
    assert warm_slope(points) == pytest.approx(0.0)
    assert slope_per_hour(points) > 1000
    assert after_warmup([]) == [] and warm_slope([]) is None


def test_growing_parts_are_a_trend_not_a_saw_tooth():
    saw = [(float(t), 3 + t % 7) for t in range(0, 1200, 5)]  # inserts, then a merge
    climb = [(float(t), 3 + t // 20) for t in range(0, 1200, 5)]  # merges fall behind
    assert not growing(saw) and growing(climb)
    assert not growing(climb[:5])  # too few samples to call a trend


def test_summary_reports_peak_parts_and_their_trend():
    samples = [{"t": float(t), "rss_mb": 500.0 + (t if t < 50 else 50), "fds": 100,
                "threads": 60, "parts": {"market.trades": 3 + t % 4}} for t in range(0, 100, 5)]
    samples[10]["peak_rss_mb"] = 700.0
    s = summarize(samples)
    assert s["samples"] == 20 and s["peak_rss_mb"] == 700.0
    assert s["rss_slope_mb_per_h"] == pytest.approx(0.0)
    assert s["parts_end"] == {"market.trades": samples[-1]["parts"]["market.trades"]}
    assert s["parts_max"] == {"market.trades": 6}
    assert abs(s["parts_slope_per_h"]["market.trades"]) < 400  # saw-tooth: merges keep up
    assert s["parts_growing"] == []
    assert s["fds_end"] == 100 and s["threads_slope_per_h"] == 0.0



def test_summary_names_the_mapping_that_grows_and_the_backlog():
    # after warm-up only the 2 MiB-aligned extents grow (3.6 MB a minute); frames queue
    samples = [{"t": float(t), "rss_mb": 600.0, "queued_frames_mb": 1.0 + t / 60,
                "source_paused_s": t / 10,
                "anon_by_mapping_mb": {"glibc_heaps": 80.0, "aligned_2m": 50 + 0.06 * t},
                "jemalloc_resident_mb": 100 + 0.06 * t, "jemalloc_allocated_mb": 80.0}
               for t in range(0, 600, 10)]
    s = summarize(samples)
    # the engine's resident memory grows while what it allocates does not (dirty pages)
    assert s["jemalloc_resident_slope_mb_per_h"] == pytest.approx(216.0)
    assert s["jemalloc_allocated_slope_mb_per_h"] == pytest.approx(0.0)
    assert s["anon_by_mapping_slope_mb_per_h"]["aligned_2m"] == pytest.approx(216.0)
    assert s["anon_by_mapping_slope_mb_per_h"]["glibc_heaps"] == pytest.approx(0.0)
    assert s["queued_frames_slope_mb_per_h"] == pytest.approx(60.0)
    assert s["queued_frames_max_mb"] == pytest.approx(1.0 + 590 / 60)
    assert s["source_paused_s_end"] == 59.0


@pytest.mark.integration
def test_soak_drill_short_run_samples_the_ingest_and_loses_nothing(tmp_path):
    store = tmp_path / "soak"
    proc = run_cli("drill", "soak", "--minutes", "0.75", "--rate", "200",
                   "--readings-per-s", "300", "--outage-every", "20", "--outage-seconds", "5",
                   "--sample-s", "2", "--store", str(store), timeout=420)
    assert proc.stdout.strip(), proc.stderr
    verdict = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert verdict["drill"] == "soak" and verdict["ok"] is True
    # nothing lost, nothing stored twice, trades and readings
    assert verdict["lost"] == 0 and verdict["duplicates_stored"] == 0
    assert verdict["stored"] == verdict["unique_sent"] > 0
    assert verdict["readings_lost"] == 0 and verdict["readings_duplicates_stored"] == 0
    assert verdict["readings_stored"] == verdict["readings_unique_sent"] > 0
    # the outages buffered rows, the replays reconciled, the ledger holds
    assert verdict["outages"] >= 1 and verdict["replayed_rows"] > 0
    assert verdict["reconciliation"]["ok"] >= 1 and verdict["reconciliation"]["failed"] == 0
    assert verdict["ledger_ok"] is True and verdict["run_exit"] == 0
    # the footprint: sampled from the ingest's own report (the store is never opened twice)
    assert verdict["samples"] >= 10
    assert isinstance(verdict["rss_slope_mb_per_h"], float)
    assert verdict["slope_judged"] is False  # 45 s is all warm-up
    assert 100 < verdict["peak_rss_mb"] < 4000
    assert verdict["parts_end"]["market.trades"] >= 1
    assert verdict["parts_end"]["iot.readings"] >= 1
    assert verdict["fds_end"] > 0 and verdict["threads_end"] > 0
    comp = verdict["peak_composition"]
    assert comp["rss_anon_mb"] > 0 and comp["malloc_in_use_mb"] > 0
    assert comp["jemalloc_resident_mb"] > 0 and comp["store_tracked_mb"] is not None
    chart = Path(verdict["chart"])
    assert chart.parent == store / "drill" and "<polyline" in chart.read_text()
    lines = (store / "drill" / "soak_samples.jsonl").read_text().splitlines()
    assert len(lines) == verdict["samples"]
    assert all(json.loads(line)["rss_mb"] > 0 for line in lines)


@pytest.mark.integration
def test_embedded_store_caches_are_sized_by_settings(tmp_path):
    # chDB takes server settings as startup options: the engine reports them changed
    names = ("mark_cache_size", "primary_index_cache_size", "max_server_memory_usage",
             "vector_similarity_index_cache_size")
    sql = ("SELECT name, value, changed FROM system.server_settings WHERE name IN ("
           + ", ".join(f"'{n}'" for n in names) + ")")
    proc = run_cli("sql", sql, "--format", "json", cwd=tmp_path,
                   FEEDHOUSE_EMBEDDED_STORE__MARK_CACHE_MB="96")
    assert proc.returncode == 0, proc.stderr
    got = {r["name"]: (int(r["value"]), int(r["changed"]))
           for r in map(json.loads, proc.stdout.splitlines())}
    mb = 1024 * 1024
    assert got == {"mark_cache_size": (96 * mb, 1), "primary_index_cache_size": (64 * mb, 1),
                   "max_server_memory_usage": (1536 * mb, 1),
                   "vector_similarity_index_cache_size": (16 * mb, 1)}

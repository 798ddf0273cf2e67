"""The daily audit report: a drilled outage shows its gap, replay and ok reconciliation; a
clean day says complete; problems are named; and it renders in a real headless Chromium."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from quality.report import build_report, report_path
from quality.runner import run_quality
from quality.window import Window
from tests.support.browser import page_text, png_pixels, screenshot
from tests.support.quality_seed import (
    at,
    audits,
    ledger,
    outage,
    quotes,
    readings,
    seed,
    store_settings,
    trades,
)

DRILL_DAY = "2026-11-20"
CLEAN_DAY = "2026-11-21"
BAD_DAY = "2026-11-22"


def seed_day(settings, day: str, *, drill: bool = False, recon_ok: bool = True) -> None:
    rows, ledgers, audit_rows = [], [], []
    for h in (1, 9, 10, 17):
        rows += trades(at(h, day), n=40)
        rows += trades(at(h, day), n=20, venue="coinbase", symbols=("BTC-USD",), lag_ms=90)
    for feed in ("binance-trades", "coinbase-trades"):
        ledgers += ledger(at(10, day), feed=feed)
        audit_rows += audits(at(10, day), feed=feed)
    tables = {
        "market_trades": rows,
        "market_quotes": quotes(at(10, day)),
        "iot_readings": readings(at(9, day)),
        "ops_ingest_ledger": ledgers,
        "ops_row_count_audit": audit_rows,
    }
    if drill:
        gap, replay, recon = outage(at(10, day, minute=30), ok=recon_ok)
        # The same replay drained a second feed, reconciled ok and later: the first feed's
        # outcome must still show (a replay id spans feeds and tables).
        _, other, other_recon = outage(
            at(10, day, minute=30), feed="coinbase-trades", rows=40, checked_after_s=90
        )
        tables |= {
            "ops_feed_gaps": [gap],
            "ops_replay_log": replay + other,
            "ops_reconciliation": [recon, other_recon],
        }
    seed(settings, **tables)
    start = at(0, day)
    run_quality(settings, Window(start, start + timedelta(days=1)), docs=False, now=at(23, day))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    settings = store_settings(tmp_path_factory.mktemp("report"))
    seed_day(settings, DRILL_DAY, drill=True)
    seed_day(settings, CLEAN_DAY)
    seed_day(settings, BAD_DAY, drill=True, recon_ok=False)
    seed(settings, ops_row_count_audit=[dict(audits(at(11, BAD_DAY), minutes=1)[0],
                                             table_count=25, difference=-3, status="missing")])  # fmt: skip
    built = {
        d: build_report(settings, date.fromisoformat(d)) for d in (DRILL_DAY, CLEAN_DAY, BAD_DAY)
    }
    return settings, built


@pytest.mark.integration
def test_drilled_outage_shows_gap_replay_and_ok_reconciliation(reports):
    settings, built = reports
    report = built[DRILL_DAY]
    assert report.path == report_path(settings, date(2026, 11, 20))
    assert report.path.name == "audit-2026-11-20.html"
    assert report.complete, report.data.problems()
    replay, other = report.data.replays
    assert (replay["replay_id"], replay["feed"], replay["reconciliation"]) == (
        "replay-20261120-103000", "binance-trades", "ok",
    )  # fmt: skip
    assert (replay["rows"], replay["buffered_rows"]) == (123, 123)  # trades + ledger rows
    assert replay["tables"] == "market.trades, ops.ingest_ledger"
    assert replay["first_event_ts"] == at(10, DRILL_DAY, minute=30)  # ledger's epoch ignored
    assert other["feed"] == "coinbase-trades"
    (gap,) = report.data.gaps
    assert gap["kind"] == "disconnect"
    html = report.path.read_text()
    section = html[html.index('id="replays"') : html.index('id="audits"')]
    assert (
        "replay-20261120-103000" in section
        and ">ok<" in section
        and "10:30:00 – 10:30:20" in section
    )
    gaps = html[html.index('id="gaps"') : html.index('id="replays"')]
    assert "connection closed 1006" in gaps and "20.0 s" in gaps
    assert f"Day {DRILL_DAY} is complete" in html
    # Per-venue figures: 4 hours x 40 binance trades, 2/30 duplicates per ledger minute.
    assert report.data.total_rows == 4 * 60 + 60
    assert "6.67%" in html[html.index('id="rates"') : html.index('id="lag"')]
    md = report.markdown()
    assert md.startswith(f"**{DRILL_DAY}: complete**") and "2 replays (2 reconciled ok)" in md


def test_clean_day_is_complete_with_every_section_filled(reports):
    _, built = reports
    report = built[CLEAN_DAY]
    assert report.complete
    html = report.path.read_text()
    assert f"Day {CLEAN_DAY} is complete" in html
    assert "No buffer outage" in html and "No disconnects" in html
    for section in ("rows", "rates", "lag", "audits", "quality"):
        body = html[html.index(f'id="{section}"') :].split("</section>", 1)[0]
        assert "<table>" in body, section
    lag = {r["source"]: r for r in report.data.lag}
    assert lag["binance"]["recv_ms"][0] == pytest.approx(40.0)
    assert lag["coinbase"]["recv_ms"][0] == pytest.approx(90.0)
    assert lag["binance"]["ins_ms"][2] == pytest.approx(15.0)


def test_failed_reconciliation_and_audit_make_the_day_incomplete(reports):
    _, built = reports
    report = built[BAD_DAY]
    assert not report.complete
    problems = report.data.problems()
    assert "reconciliation of replay-20261122-103000 (binance-trades): failed" in problems
    assert "row-count audit binance-trades market.trades: 1 of 4 minutes not ok" in problems
    html = report.path.read_text()
    assert f"Day {BAD_DAY} is NOT complete" in html and "3 rows missing" in html
    assert "not ok: 11:00" in html


def test_report_is_self_contained_and_holds_no_secrets(reports):
    settings, built = reports
    html = built[DRILL_DAY].path.read_text()
    assert "<svg" in html and "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "src=" not in html and "<link" not in html
    assert settings.dsn not in html and str(settings.home) not in html


@pytest.mark.integration
def test_report_renders_in_headless_chromium(reports, tmp_path):
    _, built = reports
    page = built[DRILL_DAY].path
    pixels = png_pixels(screenshot(page, tmp_path))
    assert pixels.shape[:2] == (2000, 1200)
    flat = pixels.reshape(-1, pixels.shape[2])[:, :3]
    assert len(np.unique(flat[::13], axis=0)) > 50  # text, charts, tables: not a blank page
    for rgb in ((236, 253, 245), (37, 99, 235), (245, 158, 11)):  # summary box, chart bars
        assert (flat == rgb).all(axis=1).sum() > 500, rgb
    text = page_text(page, tmp_path)
    assert f"Day {DRILL_DAY} is complete" in text
    assert "300 rows; 1 gaps/disconnects; 2 replays (2 reconciled ok)" in text
    assert "replay-20261120-103000" in text and "connection closed 1006" in text
    assert "binance 160 40" in text  # rows per venue and busiest hour

"""`feedhouse demo`, shortened: every feed through the pipeline, an outage, all reconciled."""

from __future__ import annotations

import re

import pytest

from feedhouse.app import analytics
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_short_demo_reconciles_everything(tmp_path) -> None:
    result = run_cli("demo", "--seconds", "20", "--outage-seconds", "5", cwd=tmp_path,
                     timeout=400)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "everything reconciled" in out
    rows = {m.group(1): m.group(0) for m in re.finditer(r"│ (\w+)\s+│.*│\s*$", out, re.M)}
    feeds = {"binance_futures", "bitstamp", "bybit", "coinbase_exchange", "kraken", "okx", "plant"}
    assert feeds <= set(rows), out[-3000:]
    for feed in feeds:
        cells = [c.strip() for c in rows[feed].strip("│ \n").split("│")]
        received, stored, buffered, replayed = (int(cells[i].replace(",", "")) for i in (1, 2, 5, 6))
        assert received > 0 and stored > 0, rows[feed]
        assert buffered == replayed, rows[feed]  # the outage's rows all came back
        assert cells[7:] == ["ok", "ok", "ok"] or cells[7:] == ["ok", "-", "ok"], rows[feed]
    (report,) = (tmp_path / ".feedhouse" / "reports").glob("audit-*.html")  # <home>/reports
    html = report.read_text()
    assert "is complete: every row-count audit is ok" in html
    # the report of this real run shows the drilled outage: its replays, each reconciled ok
    replays, reconciled = map(int, re.search(
        r"(\d+) replays \((\d+) reconciled ok\)", html).groups())
    assert replays >= 1 and reconciled == replays, html[:2000]
    assert "No buffer outage" not in html

    # every shipped analytics query answers on the demo's store
    settings = load_settings(home=str(tmp_path / ".feedhouse"))
    with warehouse(settings) as client:
        answers = {name: analytics.run(client, name)[1] for name in analytics.catalog()}
    assert len(answers) >= 7
    # the recorded sessions share no symbol across venues, so cross-venue dispersion has
    # nothing to compare here (tests/test_analytics.py checks its figures on seeded data)
    # book_at and depth default to Binance spot BTC-USDT, which the demo does not serve
    empty = sorted(name for name, rows in answers.items() if not rows)
    assert empty == ["book_at", "depth", "price_dispersion"], \
        f"analytics with no answer on the demo store: {empty}"
    # order books (issue 21): four venues, every break explained, book_at non-crossed on
    # every symbol's last synced span (a crossed book fails the demo: books_check.py)
    books = re.search(r"books: ([\d,]+) level updates from (\d+) venues; (\d+) breaks, "
                      r"(\d+) unexplained; book_at non-crossed for (\d+) of (\d+) synced", out)
    assert books, out[-3000:]
    levels, venues, _breaks, unexplained, fine, synced = (
        int(g.replace(",", "")) for g in books.groups())
    assert levels > 10_000 and venues >= 4 and unexplained == 0 and synced >= 4
    assert fine == synced and "(crossed:" not in out, books.group(0)
    with warehouse(settings) as client:
        names, rows = analytics.run(client, "book_at", {"venue": "okx", "symbol": "BTC-USDT"})
    assert rows

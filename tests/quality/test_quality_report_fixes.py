"""What the audit report says where a reader was left guessing (issue 20): what "rows"
counts, a legend with every series, a short outage drawn as a bar, negative lag explained."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from quality.report import render_html
from quality.report_data import DayData
from quality.svg import bar_chart

DAY = date(2026, 11, 20)
T = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
VENUES = ["binance_futures", "bitstamp", "bybit", "coinbase", "kraken", "okx", "iot plant"]


def _data() -> DayData:
    return DayData(
        day=DAY,
        generated=T + timedelta(hours=13),
        rows_per_hour=[{"source": v, "hour": 10, "rows": 100 * (i + 1)} for i, v in enumerate(VENUES)],
        quotes=[{"source": "binance_futures", "rows": 22442}, {"source": "okx", "rows": 7}],
        lag=[
            {"source": "bitstamp", "rows": 200, "recv_ms": [-21.0, -5.0, 3.0], "ins_ms": [40.0, 80.0, 90.0]},
            {"source": "okx", "rows": 600, "recv_ms": [12.0, 30.0, 45.0], "ins_ms": [40.0, 80.0, 90.0]},
        ],
        replays=[{
            "replay_id": "replay-1", "feed": "okx", "tables": "market.trades", "rows": 50,
            "buffered_rows": 50, "first_event_ts": T, "last_event_ts": T + timedelta(seconds=15),
            "started_ts": T + timedelta(seconds=16), "finished_ts": T + timedelta(seconds=17),
            "status": "finished", "reconciliation": "ok", "explanation": "",
        }],
    )


def _section(html: str, sid: str) -> str:
    start = html.index(f'id="{sid}"')
    return html[start : html.find("<section", start + 1)]


def test_rows_say_they_leave_quotes_out_and_show_them_apart():
    rows = _section(render_html(_data()), "rows")
    assert "quotes (market.quotes) are not counted" in rows
    assert "<th>quotes (not in rows)</th>" in rows
    assert re.search(r"binance_futures</td><td>100</td><td>100</td><td>22,442</td>", rows)
    assert re.search(r"bitstamp</td><td>200</td><td>200</td><td>–</td>", rows)


def test_the_legend_shows_every_series_inside_the_chart():
    series = {v: [1.0] * 24 for v in VENUES + ["a", "b", "c", "d"]}
    svg = bar_chart("rows", [f"{h:02d}" for h in range(24)], series, stacked=True)
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    legend = re.findall(r'<text x="(\d+)" y="(\d+)" font-size="12">([^<]+)</text>', svg)
    assert [name for _, _, name in legend] == list(series)
    for x, y, name in legend:
        assert int(x) + 7 * len(name) <= width and int(y) <= height, (name, x, y)


def test_a_15_second_outage_is_a_bar_not_a_hairline():
    replays = _section(render_html(_data()), "replays")
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="18" fill="#8b5cf6"', replays)]
    assert widths and widths[0] > 300, widths  # was max(15 s / 24 h * 910 px, 3) = 3 px
    assert "10:29:50–10:30:27 UTC shown" in replays
    assert ">10:30:00</text>" in replays  # the axis is in seconds at that zoom


def test_negative_receive_lag_is_explained():
    lag = _section(render_html(_data()), "lag")
    assert "bitstamp (-21.0 ms at the median)" in lag and "clock skew" in lag
    assert "okx (" not in lag.split("Negative received")[1]
    assert "Negative received" not in _section(render_html(DayData(DAY, T, lag=_data().lag[1:])), "lag")

"""The daily audit report: one self-contained HTML file `<reports_dir>/audit-YYYY-MM-DD.html`.

Charts are inline SVG and the style sheet is inline, so the file opens offline in any
browser. Only counts, times, feed/venue names and offending keys go in: never settings
or the warehouse DSN.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path

from feedhouse.core.report_files import report_path
from feedhouse.core.settings import Settings
from feedhouse.store.client import warehouse
from quality.report_data import DayData, day_bounds, load_day
from quality.svg import bar_chart, timeline

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111;
background:#fff;max-width:1140px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f4f6}
td.l,th.l{text-align:left}.ok{color:#047857;font-weight:bold}.bad{color:#b91c1c;font-weight:bold}
.summary{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:15px}
.summary.complete{background:#ecfdf5;border:2px solid #10b981}
.summary.incomplete{background:#fef2f2;border:2px solid #ef4444}
.muted{color:#666}code{font-size:12px}
"""


@dataclass(frozen=True)
class Report:
    path: Path
    data: DayData

    @property
    def complete(self) -> bool:
        return self.data.complete

    def markdown(self) -> str:
        return markdown_summary(self.data, self.path)


def build_report(
    settings: Settings, day: date | None = None, now: datetime | None = None
) -> Report:
    """Read the day from ClickHouse and write its report; returns where and what."""
    now = now or datetime.now(UTC)
    day = day or now.date()
    with warehouse(settings) as client:
        data = load_day(client, day, now)
    path = report_path(settings, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(path)
    return Report(path, data)


# --- figures ----------------------------------------------------------------------------


def _ts(value: datetime | None, day: date | None = None) -> str:
    """HH:MM:SS on the report's day; the full date and time otherwise."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return str(value)
    return value.strftime("%H:%M:%S" if day is None or value.date() == day else "%Y-%m-%d %H:%M:%S")


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "–"


def _table(headers: list[str], rows: list[list], left: int = 1) -> str:
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="l"' if i < left else ""
            cells.append(cell if str(cell).startswith("<td") else f"<td{cls}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _status(text: str, good: bool) -> str:
    return f'<td class="l {"ok" if good else "bad"}">{escape(text)}</td>'


def _none(what: str) -> str:
    return f'<p class="muted">{escape(what)}</p>'


def _section_rows(data: DayData) -> str:
    hours = [f"{h:02d}" for h in range(24)]
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * 24)
    for r in data.rows_per_hour:
        series[r["source"]][int(r["hour"])] = float(r["rows"])
    quotes = {q["source"]: int(q["rows"]) for q in data.quotes}
    note = _none(
        "Rows are trades (market.trades, per venue) and sensor readings (iot.readings, per "
        "feed), by event time; best bid/ask quotes (market.quotes) are not counted in them "
        "and are shown apart."
    )
    if not series:
        return note + _none("No rows in any table for this day.")
    chart = bar_chart("Rows per hour (UTC): trades and readings", hours, dict(series), stacked=True)
    totals = [[escape(s), f"{int(sum(v)):,}", f"{int(max(v)):,}",
               f"{quotes[s]:,}" if s in quotes else "–"] for s, v in series.items()]
    totals += [[escape(s), "0", "0", f"{n:,}"] for s, n in quotes.items() if s not in series]
    headers = ["venue / feed", "rows", "busiest hour", "quotes (not in rows)"]
    return note + chart + _table(headers, totals)


def _section_ledger(data: DayData) -> str:
    if not data.ledger:
        return _none("The ingest ledger has no counts for this day.")
    rows, rates = [], {"duplicates %": [], "invalid %": []}
    for r in data.ledger:
        rows.append(
            [
                escape(r["feed"]),
                f"{r['received']:,}",
                f"{r['invalid']:,}",
                _pct(r["invalid"], r["received"]),
                f"{r['parsed']:,}",
                f"{r['duplicates']:,}",
                _pct(r["duplicates"], r["parsed"]),
                f"{r['inserted']:,}",
                f"{r['buffered']:,}",
                f"{r['replayed']:,}",
            ]
        )
        rates["duplicates %"].append(100.0 * r["duplicates"] / r["parsed"] if r["parsed"] else 0)
        rates["invalid %"].append(100.0 * r["invalid"] / r["received"] if r["received"] else 0)
    headers = ["feed", "messages", "invalid", "invalid rate", "records", "duplicates",
               "duplicate rate", "inserted", "buffered", "replayed"]  # fmt: skip
    chart = bar_chart(
        "Duplicate and invalid rates per feed", [r["feed"] for r in data.ledger], rates, unit="%"
    )
    return chart + _table(headers, rows)


def _lag_note(data: DayData) -> str:
    """A negative received − event time is clock skew: say so where it shows."""
    ahead = [(r["source"], r["recv_ms"][0]) for r in data.lag if r["recv_ms"][0] < 0]
    if not ahead:
        return ""
    names = ", ".join(f"{escape(s)} ({v:,.1f} ms at the median)" for s, v in ahead)
    return _none(
        f"Negative received − event time: {names}. The venue stamps event time with its "
        "own clock, which runs ahead of this machine's clock by at least that much; it is "
        "clock skew, not data from the future. The market_trades quality suite accepts "
        "exchange_ts up to quality.clock_skew_s after received_ts."
    )


def _section_lag(data: DayData) -> str:
    if not data.lag:
        return _none("No rows, so no lag to measure.")
    rows = []
    for r in data.lag:
        recv, ins = r["recv_ms"], r["ins_ms"]
        rows.append([escape(r["source"]), f"{r['rows']:,}"] + [f"{v:,.1f}" for v in (*recv, *ins)])
    headers = ["venue / feed", "rows", "recv−event p50 ms", "p95", "p99",
               "insert−recv p50 ms", "p95", "p99"]  # fmt: skip
    chart = bar_chart(
        "Ingest lag p99 (ms)",
        [r["source"] for r in data.lag],
        {
            "received − event time": [float(r["recv_ms"][2]) for r in data.lag],
            "inserted − received": [float(r["ins_ms"][2]) for r in data.lag],
        },
        unit=" ms",
    )
    return chart + _table(headers, rows) + _lag_note(data)


def _section_gaps(data: DayData) -> str:
    if not data.gaps:
        return _none("No disconnects or sequence gaps.")
    start, end = day_bounds(data.day)
    lanes: dict[str, list] = defaultdict(list)
    rows = []
    for g in data.gaps:
        seconds = (g["gap_end"] - g["gap_start"]).total_seconds()
        fill = "#ef4444" if g["kind"] == "disconnect" else "#f59e0b"
        lanes[g["feed"]].append((g["gap_start"], g["gap_end"], fill, f"{g['kind']}: {g['reason']}"))
        rows.append(
            [
                escape(g["feed"]),
                escape(g["kind"]),
                _ts(g["gap_start"], data.day),
                _ts(g["gap_end"], data.day),
                f"{seconds:,.1f} s",
                f"{g['missing']:,}",
                f'<td class="l">{escape(g["reason"])}</td>',
            ]
        )
    chart = timeline(
        "Gaps and disconnects (red: disconnect, amber: sequence gap)", start, end, lanes
    )
    headers = ["feed", "kind", "from", "to", "duration", "missing", "reason"]
    return chart + _table(headers, rows, left=2)


def _section_replays(data: DayData) -> str:
    if not data.replays:
        return _none("No buffer outage: nothing was buffered or replayed.")
    start, end = day_bounds(data.day)
    lanes: dict[str, list] = defaultdict(list)
    rows = []
    for r in data.replays:
        recon = r["reconciliation"] or "not reconciled"
        good = r["status"] == "finished" and recon == "ok"
        lanes[r["feed"]].append(
            (r["first_event_ts"], r["last_event_ts"], "#8b5cf6", f"buffered {r['buffered_rows']}")
        )
        lanes[r["feed"]].append(
            (
                r["started_ts"],
                r["finished_ts"],
                "#10b981" if good else "#ef4444",
                f"replay: {recon}",
            )
        )
        rows.append(
            [
                escape(r["feed"]),
                f"<code>{escape(r['replay_id'])}</code>",
                f"{_ts(r['first_event_ts'], data.day)} – {_ts(r['last_event_ts'], data.day)}",
                escape(r["tables"]),
                f"{r['buffered_rows']:,}",
                f"{r['rows']:,}",
                _ts(r["finished_ts"], data.day),
                _status(r["status"], r["status"] == "finished"),
                _status(recon, recon == "ok"),
                f'<td class="l">{escape(r["explanation"] or "")}</td>',
            ]
        )
    chart = timeline(
        "Buffer outages (purple: buffered event time) and replays (green: reconciled ok)",
        start,
        end,
        lanes,
    )
    headers = ["feed", "replay", "outage (event time)", "tables", "buffered", "replayed",
               "replay done", "replay", "reconciliation", "explanation"]  # fmt: skip
    return chart + _table(headers, rows, left=4)


def _section_audits(data: DayData) -> str:
    if not data.audits:
        return _none("No row-count audit ran for this day.")
    rows = []
    for a in data.audits:
        bad = ", ".join(m.strftime("%H:%M") for m in a["bad_minutes"])
        rows.append(
            [
                escape(a["feed"]),
                escape(a["table_name"]),
                f"{a['minutes']:,}",
                f"{a['ok']:,}",
                f"{a['missing']:,}",
                f"{a['extra']:,}",
                f"{a['difference']:,}",
                _status(
                    "all ok" if a["ok"] == a["minutes"] else f"not ok: {bad}",
                    a["ok"] == a["minutes"],
                ),
            ]
        )
    headers = ["feed", "table", "minutes", "ok", "missing", "extra", "row difference", "status"]
    return _table(headers, rows, left=2)


def _section_quality(data: DayData) -> str:
    if not data.quality:
        return _none("No quality check ran over this day.")
    rows = []
    for q in data.quality:
        failed = q["failures"] > 0
        sample = ""
        if failed and q["last_sample"]:
            sample = json.dumps(json.loads(q["last_sample"])[:3])
        rows.append(
            [
                escape(q["suite"]),
                f"<code>{escape(q['expectation'])}</code>",
                escape(q["severity"]),
                f"{q['runs']:,}",
                _status(f"{q['failures']} failed" if failed else "passed", not failed),
                f"{q['max_unexpected']:,}",
                f'<td class="l"><code>{escape(sample)}</code></td>',
            ]
        )
    headers = ["suite", "expectation", "severity", "runs", "result", "max rows", "offending keys"]
    return _table(headers, rows, left=3)


def _summary(data: DayData) -> str:
    problems = data.problems()
    verdict = "complete" if not problems else "incomplete"
    head = (
        f"Day {data.day.isoformat()} is complete: every row-count audit is ok, every "
        "reconciliation is ok and no ERROR quality check failed."
        if not problems
        else f"Day {data.day.isoformat()} is NOT complete:"
    )
    items = "".join(f"<li>{escape(p)}</li>" for p in problems)
    figures = _key_figures(data)
    return (
        f'<div class="summary {verdict}" id="summary"><strong>{escape(head)}</strong>'
        f"{'<ul>' + items + '</ul>' if items else ''}<p>{escape(figures)}</p></div>"
    )


def _key_figures(data: DayData) -> str:
    minutes = sum(a["minutes"] for a in data.audits)
    ok_minutes = sum(a["ok"] for a in data.audits)
    recon_ok = sum(1 for r in data.replays if r["reconciliation"] == "ok")
    errors = sum(1 for q in data.quality if q["severity"] == "ERROR" and q["failures"])
    warns = sum(1 for q in data.quality if q["severity"] == "WARN" and q["failures"])
    return (
        f"{data.total_rows:,} rows; {len(data.gaps)} gaps/disconnects; "
        f"{len(data.replays)} replays ({recon_ok} reconciled ok); "
        f"audits {ok_minutes}/{minutes} minutes ok; "
        f"quality: {errors} ERROR and {warns} WARN expectations failed"
    )


def render_html(data: DayData) -> str:
    sections = [
        ("rows", "Rows per hour", _section_rows),
        ("rates", "Duplicates and invalid messages", _section_ledger),
        ("lag", "Ingest lag percentiles", _section_lag),
        ("gaps", "Gaps and disconnects", _section_gaps),
        ("replays", "Buffer outages, replays and reconciliation", _section_replays),
        ("audits", "Row-count audit", _section_audits),
        ("quality", "Quality checks", _section_quality),
    ]
    body = "".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2>{render(data)}</section>'
        for sid, title, render in sections
    )
    day = data.day.isoformat()
    generated = data.generated.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>feedhouse audit {day}</title><style>{STYLE}</style></head><body>"
        f"<h1>feedhouse audit report — {day}</h1>"
        f'<p class="muted">UTC day {day}; generated {generated}</p>'
        f"{_summary(data)}{body}</body></html>"
    )


def markdown_summary(data: DayData, path: Path | None = None) -> str:
    problems = data.problems()
    lines = [
        f"**{data.day.isoformat()}: {'complete' if not problems else 'NOT complete'}**",
        "",
        _key_figures(data),
    ]
    lines += [f"- {p}" for p in problems]
    if path is not None:
        lines += ["", f"Report: `{path}`"]
    return "\n".join(lines)

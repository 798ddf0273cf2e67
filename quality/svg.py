"""Tiny inline-SVG charts for the audit report (no JavaScript, no CDN: renders offline)."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899")


def _frame(width: int, height: int, left: int, title: str) -> list[str]:
    """The opening of every chart: the svg element, its title, background and heading."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


LEGEND_STEP, LEGEND_ROW = 170, 18


def _legend_per_row(x: float, width: int) -> int:
    return max(int((width - x) // LEGEND_STEP), 1)


def _legend(names: list[str], x: float, y: float, width: int) -> str:
    """Every series' swatch and name, wrapping into rows of what fits in `width`."""
    per_row = _legend_per_row(x, width)
    parts = []
    for i, name in enumerate(names):
        xi = x + (i % per_row) * LEGEND_STEP
        yi = y + (i // per_row) * LEGEND_ROW
        parts.append(
            f'<rect x="{xi:.0f}" y="{yi - 10:.0f}" width="12" height="12" fill="{color(i)}"/>'
            f'<text x="{xi + 16:.0f}" y="{yi:.0f}" font-size="12">{escape(name)}</text>'
        )
    return "".join(parts)


def bar_chart(
    title: str,
    categories: list[str],
    series: dict[str, list[float]],
    *,
    unit: str = "",
    stacked: bool = False,
    width: int = 1100,
    height: int = 260,
) -> str:
    """Bars per category, one colour per series (stacked or side by side)."""
    names = list(series)
    left, right, top, bottom = 70, 20, 40, 60
    extra_rows = max(len(names) - 1, 0) // _legend_per_row(left, width)
    height += extra_rows * LEGEND_ROW  # the legend wraps below the plot
    plot_w, plot_h = width - left - right, height - top - bottom
    if stacked:
        peak = max((sum(s[i] for s in series.values()) for i in range(len(categories))), default=0)
    else:
        peak = max((v for s in series.values() for v in s), default=0)
    peak = peak or 1
    slot = plot_w / max(len(categories), 1)
    bar_w = min(slot * 0.8 / (1 if stacked or not names else len(names)), 48.0)
    pad = (slot - bar_w * (1 if stacked or not names else len(names))) / 2
    out = [
        *_frame(width, height, left, title),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{_num(peak)}{unit}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
    ]
    for c, label in enumerate(categories):
        x0 = left + c * slot + pad
        base = top + plot_h
        for i, name in enumerate(names):
            value = series[name][c]
            h = plot_h * value / peak
            if stacked:
                x, y = x0, base - h
                base -= h
            else:
                x, y = x0 + i * bar_w, top + plot_h - h
            if h > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{color(i)}"><title>{escape(name)} {escape(label)}: '
                    f"{_num(value)}{unit}</title></rect>"
                )
        out.append(
            f'<text x="{left + c * slot + slot / 2:.1f}" y="{top + plot_h + 14}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append(_legend(names, left, height - 12 - extra_rows * LEGEND_ROW, width))
    out.append("</svg>")
    return "".join(out)


TICKS_S = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600)


def zoom_window(
    start: datetime, end: datetime, spans: list[tuple[datetime, datetime]]
) -> tuple[datetime, datetime]:
    """The part of [start, end) worth drawing: the spans with half as much again on either
    side (at least 10 s), so a 15 s outage is a bar, not a hairline on a 24 h axis."""
    if not spans:
        return start, end
    first = max(min(s for s, _ in spans), start)
    last = min(max(e for _, e in spans), end)
    pad = max((last - first) * 0.5, timedelta(seconds=10))
    lo, hi = max(first - pad, start), min(last + pad, end)
    if (hi - lo) >= (end - start) * 0.5:
        return start, end
    return lo, hi


def timeline(
    title: str,
    start: datetime,
    end: datetime,
    lanes: dict[str, list[tuple[datetime, datetime, str, str]]],
    *,
    width: int = 1100,
    zoom: bool = True,
) -> str:
    """Spans (start, end, colour, tooltip) on one lane per name across [start, end);
    `zoom`: across the part of it that holds the spans (see zoom_window), axis in HH:MM:SS."""
    left, right, top, lane_h = 170, 20, 40, 26
    plot_w = width - left - right
    height = top + lane_h * max(len(lanes), 1) + 40
    if zoom:
        start, end = zoom_window(start, end, [(s, e) for sp in lanes.values() for s, e, *_ in sp])
    total = (end - start).total_seconds()
    step = next((t for t in TICKS_S if total / t <= 10), 3 * 3600)
    zoomed = total < 86400

    def x(ts: datetime) -> float:
        frac = min(max((ts - start).total_seconds() / total, 0.0), 1.0)
        return left + plot_w * frac

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    first_tick = start.timestamp() // step * step + (step if start.timestamp() % step else 0)
    tick = first_tick
    while tick <= end.timestamp() + 1e-6:
        xh = left + plot_w * (tick - start.timestamp()) / total
        at = datetime.fromtimestamp(tick, start.tzinfo)
        label = at.strftime("%H:%M:%S" if step < 60 else "%H:%M")
        if at.date() > start.date() and label.strip("0:") == "":
            label = "24:00"  # the day's end, not the next day's start
        out.append(
            f'<line x1="{xh:.1f}" y1="{top}" x2="{xh:.1f}" y2="{height - 30}" stroke="#ddd"/>'
            f'<text x="{xh:.1f}" y="{height - 14}" font-size="11" text-anchor="middle">'
            f"{label}</text>"
        )
        tick += step
    if zoomed:
        out.append(
            f'<text x="{width - right}" y="22" font-size="11" text-anchor="end" fill="#666">'
            f'{start:%H:%M:%S}–{end:%H:%M:%S} UTC shown</text>'
        )
    for n, (name, spans) in enumerate(lanes.items()):
        y = top + n * lane_h
        out.append(f'<text x="10" y="{y + 17}" font-size="12">{escape(name)}</text>')
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{plot_w}" height="{lane_h - 8}" fill="#f3f4f6"/>'
        )
        for s, e, fill, tip in spans:
            # At least 3 px wide so a 10-second outage is still visible on a 24 h axis.
            w = max(x(e) - x(s), 3.0)
            out.append(
                f'<rect x="{x(s):.1f}" y="{y + 4}" width="{w:.1f}" height="{lane_h - 8}" '
                f'fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
    out.append("</svg>")
    return "".join(out)


def _num(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    *,
    x_unit: str = "",
    y_unit: str = "",
    bands: list[tuple[float, float, str]] = (),
    marks: list[tuple[float, str]] = (),
    width: int = 1100,
    height: int = 320,
) -> str:
    """Lines of (x, y) points, one colour per series; shaded x-bands (start, end, tooltip),
    e.g. outages, and labelled vertical marks (x, label)."""
    names = list(series)
    left, right, top, bottom = 70, 20, 40, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for s in series.values() for p in s]
    x0 = min((p[0] for p in points), default=0.0)
    x1 = max((p[0] for p in points), default=1.0)
    y1 = max((p[1] for p in points), default=1.0) * 1.05 or 1.0
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + plot_w * (x - x0) / span

    def py(y: float) -> float:
        return top + plot_h - plot_h * y / y1

    out = [
        *_frame(width, height, left, title),
    ]
    for s, e, tip in bands:
        out.append(
            f'<rect x="{px(s):.1f}" y="{top}" width="{max(px(e) - px(s), 2.0):.1f}" '
            f'height="{plot_h}" fill="#fee2e2"><title>{escape(tip)}</title></rect>'
        )
    out += [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{_num(y1)}{y_unit}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
        f'<text x="{left}" y="{top + plot_h + 14}" font-size="11">{_num(x0)}{x_unit}</text>',
        f'<text x="{left + plot_w}" y="{top + plot_h + 14}" font-size="11" text-anchor="end">'
        f"{_num(x1)}{x_unit}</text>",
    ]
    for x, label in marks:
        out.append(
            f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{top + plot_h}" '
            f'stroke="#999" stroke-dasharray="4 3"/>'
            f'<text x="{px(x) + 4:.1f}" y="{top + 12}" font-size="11">{escape(label)}</text>'
        )
    for i, name in enumerate(names):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in series[name])
        if pts:
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color(i)}" '
                       f'stroke-width="1.5"><title>{escape(name)}</title></polyline>')
    out.append(_legend(names, left, height - 12, width))
    out.append("</svg>")
    return "".join(out)

"""Charts for the staff UI, drawn on the server as SVG: no JavaScript, nothing the strict CSP refuses
(colours are CSS classes of ``admin_ui.css``, not inline styles), and every label goes through the
template's escaping (``admin/pg_chart.html`` renders a ``Chart``).

A chart plots values per day: bars (stacked when there are several series) or lines. It has a y axis
with "nice" ticks (1, 2 or 5 × 10ⁿ apart) labelled by the chart's own formatter (a count, money,
a duration — ``prisma_glow.display``), an x axis with at most ``MAX_X_LABELS`` day labels, a legend
naming each series, a ``<title>`` per bar or point, and a hidden table of the same figures for
screen readers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH = 640
PLOT_LEFT = 72
PLOT_RIGHT = WIDTH - 12
PLOT_TOP = 12
PLOT_BOTTOM = 162
X_LABEL_Y = PLOT_BOTTOM + 16
LEGEND_TOP = PLOT_BOTTOM + 38
LEGEND_ROW = 18
MAX_X_LABELS = 8
LEGEND_LABEL_CHARS = 40
#: The colour classes series take in turn (``.pg-series-N`` in admin_ui.css).
PALETTE_SIZE = 6


@dataclass
class Series:
    """One named row of values, one per day (None: nothing that day — a gap in a line)."""

    label: str
    values: Sequence[float | int | None]
    css: str = ""


@dataclass
class Chart:
    key: str
    title: str
    kind: str
    days: list[dt.date]
    width: int = WIDTH
    height: int = 0
    plot: dict = field(default_factory=dict)
    y_ticks: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)
    legend: list[dict] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    series_labels: list[str] = field(default_factory=list)
    empty: bool = True
    description: str = ""


def nice_ticks(peak: float, *, integer: bool, count: int = 4) -> list[float]:
    """0 … a round number at or above ``peak``, in about ``count`` equal steps of 1, 2 or 5 × 10ⁿ."""
    if peak <= 0:
        return [0, 1] if integer else [0.0, 1.0]
    raw = peak / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    top = math.ceil(peak / step - 1e-9) * step
    n = round(top / step)
    return [round(i * step, 10) for i in range(n + 1)]


def _x_slots(days: list[dt.date]) -> tuple[float, list[float]]:
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(1, len(days))
    return slot, [PLOT_LEFT + slot * (i + 0.5) for i in range(len(days))]


def _legend(series: list[Series]) -> tuple[list[dict], int]:
    items, x, y = [], PLOT_LEFT, LEGEND_TOP
    for s in series:
        label = s.label if len(s.label) <= LEGEND_LABEL_CHARS else s.label[: LEGEND_LABEL_CHARS - 1] + "…"
        width = 18 + len(label) * 6.6 + 18
        if x > PLOT_LEFT and x + width > PLOT_RIGHT:
            x, y = PLOT_LEFT, y + LEGEND_ROW
        items.append(
            {
                "x": round(x, 1),
                "y": y,
                "text_x": round(x + 16, 1),
                "label": label,
                "full": s.label,
                "css": s.css,
            }
        )
        x += width
    return items, y + 10


def day_chart(
    *,
    key: str,
    title: str,
    days: list[dt.date],
    series: list[Series],
    kind: str = "bar",
    tick_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    value_format: Callable[[float | None], str] | None = None,
    integer: bool = True,
) -> Chart:
    """A chart of ``series`` over ``days``: ``kind`` "bar" (stacked) or "line"; ``key`` names it in
    the page (element ids)."""
    if kind not in ("bar", "line"):
        raise ValueError(f"Unknown chart kind {kind!r}.")
    value_format = value_format or tick_format
    for index, s in enumerate(series):
        s.css = s.css or f"pg-series-{index % PALETTE_SIZE}"
    chart = Chart(key=key, title=title, kind=kind, days=days, series_labels=[s.label for s in series])
    if kind == "bar":
        peak = max((sum(s.values[i] or 0 for s in series) for i in range(len(days))), default=0)
    else:
        peak = max((v for s in series for v in s.values if v is not None), default=0)
    chart.empty = not any(v for s in series for v in s.values if v)
    ticks = nice_ticks(float(peak), integer=integer)
    top = ticks[-1]
    scale = (PLOT_BOTTOM - PLOT_TOP) / top

    def y_of(value: float) -> float:
        return round(PLOT_BOTTOM - value * scale, 1)

    chart.y_ticks = [{"y": y_of(t), "label": tick_format(t)} for t in ticks]
    slot, centres = _x_slots(days)
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    last = len(days) - 1
    chart.x_ticks = [
        {"x": round(centres[i], 1), "label": day.strftime("%-d %b")}
        for i, day in enumerate(days)
        if (last - i) % every == 0
    ]
    if kind == "bar":
        width = round(max(1.0, slot * 0.7), 1)
        for i, day in enumerate(days):
            base = 0.0
            for s in series:
                value = s.values[i] or 0
                if not value:
                    continue
                chart.bars.append(
                    {
                        "x": round(centres[i] - width / 2, 1),
                        "y": y_of(base + value),
                        "width": width,
                        "height": round(value * scale, 1),
                        "css": s.css,
                        "title": f"{day:%a %-d %b}: {s.label} {value_format(value)}",
                    }
                )
                base += value
    else:
        for s in series:
            segment: list[str] = []
            segments: list[str] = []
            for i, day in enumerate(days):
                value = s.values[i]
                if value is None:
                    if segment:
                        segments.append(" ".join(segment))
                    segment = []
                    continue
                x, y = round(centres[i], 1), y_of(value)
                segment.append(f"{x},{y}")
                chart.points.append(
                    {
                        "x": x,
                        "y": y,
                        "css": s.css,
                        "title": f"{day:%a %-d %b}: {s.label} {value_format(value)}",
                    }
                )
            if segment:
                segments.append(" ".join(segment))
            chart.lines.extend({"points": points, "css": s.css} for points in segments if " " in points)
    chart.legend, legend_bottom = _legend(series)
    chart.height = legend_bottom + 6
    chart.plot = {
        "left": PLOT_LEFT,
        "right": PLOT_RIGHT,
        "top": PLOT_TOP,
        "bottom": PLOT_BOTTOM,
        "label_y": X_LABEL_Y,
    }
    chart.table = [
        {
            "day": day,
            "values": [value_format(s.values[i]) if s.values[i] is not None else "—" for s in series],
        }
        for i, day in enumerate(days)
    ]
    chart.description = (
        f"{title}, {days[0]:%-d %b %Y} to {days[-1]:%-d %b %Y}; series: {', '.join(s.label for s in series)}"
        if days
        else title
    )
    return chart

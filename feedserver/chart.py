"""A daily bar chart drawn on the server as inline SVG: no script and no style sheet of its
own, so the pages' strict Content-Security-Policy stays as it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH = 600
HEIGHT = 160
MARGIN_LEFT = 40
MARGIN_BOTTOM = 20


def daily_chart(series: Sequence[tuple[date, int]], title: str) -> Markup:
    """An accessible SVG bar chart of one value per day, oldest on the left."""
    peak = max((value for _, value in series), default=0) or 1
    plot_width = WIDTH - MARGIN_LEFT
    plot_height = HEIGHT - MARGIN_BOTTOM
    slot = plot_width / max(1, len(series))
    bars = []
    for index, (day, value) in enumerate(series):
        height = round(plot_height * value / peak, 1)
        x = round(MARGIN_LEFT + index * slot + slot * 0.1, 1)
        bars.append(
            f'<rect x="{x}" y="{round(plot_height - height, 1)}" width="{round(slot * 0.8, 1)}"'
            f' height="{height}" fill="currentColor"><title>{day.isoformat()}: {value}</title>'
            "</rect>"
        )
    first = series[0][0].isoformat() if series else ""
    last = series[-1][0].isoformat() if series else ""
    labels = (
        f'<text x="{MARGIN_LEFT - 4}" y="12" text-anchor="end" font-size="11"'
        f' fill="currentColor">{peak}</text>'
        f'<text x="{MARGIN_LEFT - 4}" y="{plot_height}" text-anchor="end" font-size="11"'
        ' fill="currentColor">0</text>'
        f'<text x="{MARGIN_LEFT}" y="{HEIGHT - 4}" font-size="11"'
        f' fill="currentColor">{first}</text>'
        f'<text x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end" font-size="11"'
        f' fill="currentColor">{last}</text>'
    )
    axis = (
        f'<line x1="{MARGIN_LEFT}" y1="{plot_height}" x2="{WIDTH}" y2="{plot_height}"'
        ' stroke="currentColor" stroke-width="1"></line>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{axis}{''.join(bars)}{labels}</svg>"
    )

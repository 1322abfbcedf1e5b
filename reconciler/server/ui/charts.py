"""Inline SVG charts drawn on the server (no script, no library): sends per minute as bars.

The SVG carries ``role="img"``, a ``<title>`` and a ``<desc>`` summing it up for screen
readers; colours come from CSS variables, so the chart follows light and dark mode.
"""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 600, 120, 34, 18, 8


def _nice_max(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak <= step * 4:
            return step * 4
    return -(-peak // 10000) * 10000


def sent_chart(series: list[tuple[str, int]]) -> Markup:
    """Bars of (minute, count), oldest first; the y axis from 0 to a round maximum."""
    peak, total = max((n for _, n in series), default=0), sum(n for _, n in series)
    top = _nice_max(peak)
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(1, len(series))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             'aria-labelledby="chart-title chart-desc">',
             '<title id="chart-title">Events sent per minute, last hour</title>',
             f'<desc id="chart-desc">{total} sent in the last hour; at most {peak} in one '
             'minute.</desc>']
    for i in range(5):  # grid lines and y labels
        y = PAD_TOP + plot_h * i / 4
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{top * (4 - i) // 4}</text>')
    for i, (minute, n) in enumerate(series):
        h = plot_h * n / top if top else 0
        x, y = PAD_LEFT + i * slot + 1, PAD_TOP + plot_h - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(1.0, slot - 2):.1f}"'
                     f' height="{h:.1f}"><title>{escape(minute[11:])} UTC: {n}</title></rect>')
    last = len(series) - 1
    for i, anchor in ((0, "start"), (last // 2, "middle"), (last, "end")):
        if 0 <= i <= last:
            x = PAD_LEFT + i * slot + (0 if anchor == "start" else slot if anchor == "end"
                                       else slot / 2)
            parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 4}" '
                         f'text-anchor="{anchor}">{escape(series[i][0][11:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

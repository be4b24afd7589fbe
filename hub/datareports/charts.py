"""A histogram as inline SVG for the data report: one bar per length bin, counts on a linear axis, a tooltip per
bar; like the eval charts (hub/evals/charts.py), drawn on the server with every text escaped and no script."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 44
BAR = "#4f46e5"


def bin_label(low: int, high: int | None) -> str:
    return f"{_short(low)}+" if high is None else f"{_short(low)}–{_short(high - 1)}"


def _short(value: int) -> str:
    return f"{value // 1024}k" if value >= 1024 and value % 1024 == 0 else str(value)


def histogram(counts: Sequence[int], edges: Sequence[int], *, title: str, unit: str) -> SafeString:
    """Bars of `counts` over the bins that start at `edges` (the last bin is open-ended); empty when no rows."""
    if not counts or not any(counts):
        return SafeString("")
    last = max(i for i, c in enumerate(counts) if c)  # trailing empty bins say nothing
    counts, labels = list(counts[: last + 1]), [bin_label(edges[i], edges[i + 1] if i + 1 < len(edges) else None)
                                                for i in range(last + 1)]
    top = max(counts)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(counts)
    parts = [f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#9ca3af"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(intcomma(top))}</text>',
             f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM}" text-anchor="end">0</text>']
    for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
        height = count / top * plot_h
        x = LEFT + i * step
        parts.append(f'<g><title>{escape(f"{label} {unit}: {intcomma(count)} rows")}</title>'
                     f'<rect x="{x + step * 0.1:.1f}" y="{HEIGHT - BOTTOM - height:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{height:.1f}" fill="{BAR}"/></g>')
        if len(counts) <= 8 or i % 2 == 0:  # every other label when they would crowd
            parts.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">'
                         f'{escape(label)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-weight="600">'
                 f'{escape(unit)}</text>')
    return mark_safe(  # noqa: S308 - every text above went through escape()
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'style="max-width:{WIDTH}px;font:11px system-ui,sans-serif" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>{"".join(parts)}</svg>')

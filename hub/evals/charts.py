"""Charts as inline SVG, rendered on the server: labelled axes, round ticks, a tooltip per point, no script.

Two shapes cover the pages: a scatter (score against size or bits per weight, one colour per kind
of row) and a line (a score across an adapter's versions, with the base model's as a dashed line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from hub.core.formatting import readable_bytes, readable_number, tick_labels

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 16, 48
COLOURS = {"base": "#111827", "adapter": "#4f46e5", "stack": "#15803d", "quantized": "#b45309"}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    kind: str = "adapter"


def number(value: float) -> str:
    """Tooltip numbers, as every page prints them."""
    return readable_number(value)


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 × 10^k apart) covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _padded(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    return low - pad, high + pad


class _Axes:
    """Maps data to the plot area and draws the frame, ticks, grid and axis labels."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], *, x_label: str, y_label: str,
                 log_x: bool = False, integer_x: bool = False, x_bytes: bool = False) -> None:
        self.log_x = log_x
        if log_x:
            exponents = [math.log10(x) for x in xs]
            low, high = math.floor(min(exponents)), math.ceil(max(exponents))
            self.x_range = (low, high if high > low else low + 1)
            x_ticks = [10.0**e for e in range(self.x_range[0], self.x_range[1] + 1)]
        else:
            self.x_range = _padded(xs)
            x_ticks = ticks(*self.x_range)
            if integer_x:
                x_ticks = sorted({round(x) for x in xs})
        self.y_range = _padded(ys)
        y_ticks = ticks(*self.y_range)
        self.y_range = (min(self.y_range[0], y_ticks[0]), max(self.y_range[1], y_ticks[-1]))
        self.parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
                      'class="frame" fill="#fff" stroke="#9ca3af"/>']
        x_ticks = [tick for tick in x_ticks if LEFT <= self.x(tick) <= WIDTH - RIGHT]
        x_texts = [readable_bytes(t * 1e6) for t in x_ticks] if x_bytes else tick_labels(x_ticks)
        for tick, text in zip(x_ticks, x_texts, strict=True):
            x = self.x(tick)
            self.parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#eef0f3"/>'
                              f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(text)}</text>')
        for tick, text in zip(y_ticks, tick_labels(y_ticks), strict=True):
            y = self.y(tick)
            self.parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eef0f3"/>'
                              f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>')
        self.parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle" '
                          f'font-weight="600">{escape(x_label)}</text>')
        self.parts.append(f'<text transform="translate(16 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
                          f'text-anchor="middle" font-weight="600">{escape(y_label)}</text>')

    def x(self, value: float) -> float:
        low, high = self.x_range
        position = math.log10(value) if self.log_x else value
        return LEFT + (position - low) / (high - low) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return HEIGHT - BOTTOM - (value - low) / (high - low) * (HEIGHT - TOP - BOTTOM)

    def svg(self, title: str, extra: list[str]) -> SafeString:
        body = "".join(self.parts + extra)
        return mark_safe(  # noqa: S308 - every text above went through escape()
            f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" overflow="visible" '
            f'style="max-width:{WIDTH}px;font:11px system-ui,sans-serif" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(title)}</title>{body}</svg>"
        )


def scatter(points: Sequence[Point], *, x_label: str, y_label: str, title: str, log_x: bool = False,
            x_megabytes: bool = False) -> SafeString:
    """One dot per point, coloured by kind, with its label beside it and in its tooltip; a legend of the kinds.
    `x_megabytes`: x is a size in MB, labelled as sizes (10 KB, 1 MB)."""
    if not points:
        return SafeString("")
    axes = _Axes([p.x for p in points], [p.y for p in points], x_label=x_label, y_label=y_label, log_x=log_x,
                 x_bytes=x_megabytes)
    dots, labelled = [], []
    for point in points:
        x, y, colour = axes.x(point.x), axes.y(point.y), COLOURS.get(point.kind, "#6b7280")
        at = readable_bytes(point.x * 1e6) if x_megabytes else number(point.x)
        tip = escape(f"{point.label}: {number(point.y)} at {at}")
        # A label that would overprint an earlier one is left to the tooltip.
        free = all(abs(x - lx) > 150 or abs(y - ly) > 12 for lx, ly in labelled)
        text = (f'<text x="{x + 7:.1f}" y="{y - 6:.1f}" fill="{colour}">{escape(_short(point.label))}</text>'
                if free else "")
        if free:
            labelled.append((x, y))
        dots.append(f'<g><title>{tip}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" '
                    f'fill-opacity="0.85"/>{text}</g>')
    kinds = list(dict.fromkeys(p.kind for p in points))
    for i, kind in enumerate(kinds):
        x = LEFT + 10 + i * 90
        dots.append(f'<circle cx="{x}" cy="{TOP + 10}" r="4" fill="{COLOURS.get(kind, "#6b7280")}"/>'
                    f'<text x="{x + 8}" y="{TOP + 14}">{escape(kind)}</text>')
    return axes.svg(title, dots)


def line(points: Sequence[tuple[float, float]], *, x_label: str, y_label: str, title: str,
         reference: float | None = None, reference_label: str = "base model") -> SafeString:
    """A polyline through (x, y) points with a marker on each; `reference` is drawn as a dashed line."""
    if not points:
        return SafeString("")
    ys = [y for _, y in points] + ([reference] if reference is not None else [])
    axes = _Axes([x for x, _ in points], ys, x_label=x_label, y_label=y_label, integer_x=True)
    path = " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in points)
    parts = [f'<polyline points="{path}" fill="none" stroke="{COLOURS["adapter"]}" stroke-width="2"/>']
    parts += [f'<g><title>{escape(f"{x_label} {number(x)}: {number(y)}")}</title><circle cx="{axes.x(x):.1f}" '
              f'cy="{axes.y(y):.1f}" r="4" fill="{COLOURS["adapter"]}"/></g>' for x, y in points]
    if reference is not None:
        y = axes.y(reference)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{COLOURS["base"]}" '
                     f'stroke-dasharray="5 4"/><text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">'
                     f"{escape(f'{reference_label}: {number(reference)}')}</text>")
    return axes.svg(title, parts)


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"

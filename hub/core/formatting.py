"""Numbers, sizes and names as people read them: the one home for how the pages (and their charts) print values.

No page prints a float with an exponent, a byte count without a unit or a snake_case metric name: the template
filters in `hub.catalog.templatetags.readable` and the SVG charts both call these.
"""

from __future__ import annotations

import math

# Metric names the suites report, as a person would say them; anything else is un-snake-cased.
METRIC_LABELS = {
    "acc": "accuracy", "acc_norm": "accuracy (length-normalized)", "bits_per_byte": "bits per byte",
    "word_perplexity": "word perplexity", "byte_perplexity": "byte perplexity", "perplexity": "perplexity",
    "exact_match": "exact match", "f1": "F1", "bleu": "BLEU", "rouge_l": "ROUGE-L", "retention": "retention",
    "loglikelihood": "log-likelihood", "bpw": "bits per weight", "bits_per_weight": "bits per weight",
}
BYTE_UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")


def readable_number(value: float | int | None, digits: int = 4) -> str:
    """About `digits` significant digits, never an exponent: 0.000168, 0.8745, 12.35, 1,234, 2.1 million."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return _int_words(value)
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return _int_words(round(value))
    if magnitude >= 10 ** digits:
        return f"{round(value):,}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _int_words(value: int) -> str:
    """1,234 below a million; 2.1 million, 8.6 billion above."""
    for size, word in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million")):
        if abs(value) >= size:
            return f"{value / size:.3g} {word}"
    return f"{value:,}"


def signed_number(value: float | None) -> str:
    """A difference with its sign: +0.012, −0.4 (a real minus sign), 0."""
    if value is None:
        return "—"
    text = readable_number(abs(value))
    return ("+" if value > 0 else "−" if value < 0 else "") + text


def readable_bytes(size: int | float | None) -> str:
    """1.2 KB, 8 GB (decimal units, as downloads are counted); a non-empty file is never "0.00 MB"."""
    if size is None:
        return "—"
    size = float(size)
    unit = 0
    while abs(size) >= 1000 and unit < len(BYTE_UNITS) - 1:
        size /= 1000
        unit += 1
    if unit == 0:
        count = int(size)
        return f"{count} byte" if count == 1 else f"{count} bytes"
    return f"{size:.3g} {BYTE_UNITS[unit]}"


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def tick_labels(values: list[float]) -> list[str]:
    """Axis labels that tell neighbouring ticks apart: as many decimals as the step between them needs."""
    if len(values) < 2:
        return [readable_number(v) for v in values]
    step = min(abs(b - a) for a, b in zip(values, values[1:], strict=False) if b != a) if len(set(values)) > 1 else 1
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    if max(abs(v) for v in values) >= 1e6:
        return [readable_number(v) for v in values]
    return [f"{v:,.{decimals}f}" for v in values]

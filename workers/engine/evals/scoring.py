"""Pure scoring functions: aggregations as lm-evaluation-harness defines them, answer normalization,
retention of general ability, and the stacking score. No model, no I/O: cached per-item records can
be re-scored with these alone.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from workers.engine.errors import EngineInputError


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of a mean from the sample standard deviation (n - 1), as lm-eval's `mean_stderr`.

    None for fewer than two values, where it is undefined (lm-eval prints "N/A").
    """
    n = len(values)
    if n < 2:
        return None
    mu = mean(values)
    return math.sqrt(math.fsum((x - mu) ** 2 for x in values) / (n - 1)) / math.sqrt(n)


def weighted_perplexity(pairs: Iterable[tuple[float, int]]) -> float:
    """exp(-Σ loglikelihood / Σ units): lm-eval's `weighted_perplexity` (units are words or bytes)."""
    lls, units = zip(*pairs, strict=True)
    exponent = -math.fsum(lls) / sum(units)
    return math.exp(exponent) if exponent < 709 else math.inf  # beyond float range: reported as null


def bits_per_byte(pairs: Iterable[tuple[float, int]]) -> float:
    """-Σ loglikelihood / Σ bytes / ln 2: lm-eval's `bits_per_byte`."""
    lls, units = zip(*pairs, strict=True)
    return -math.fsum(lls) / sum(units) / math.log(2)


def count_words(text: str) -> int:
    """Words as lm-eval counts them for word_perplexity: pieces between runs of whitespace."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def metric(value: float, stderr: float | None, *, higher_is_better: bool) -> dict[str, Any]:
    """One reported metric, in the shape every suite returns."""
    return {"value": value, "stderr": stderr, "higher_is_better": higher_is_better}


_PUNCTUATION = str.maketrans("", "", string.punctuation)

# Named, so a suite can declare them and a result can say exactly which ones were applied, in order.
NORMALIZATIONS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    # ASCII punctuation anywhere in the string, like lm-eval's exact_match(ignore_punctuation=True).
    "strip_punctuation": lambda text: text.translate(_PUNCTUATION),
    "collapse_whitespace": lambda text: " ".join(text.split()),
}


def check_normalizations(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in names if name not in NORMALIZATIONS]
    if unknown:
        raise EngineInputError(f"unknown normalizations {unknown}; known: {sorted(NORMALIZATIONS)}", field="normalize")
    return tuple(names)


def normalize(text: str, names: Sequence[str]) -> str:
    for name in names:
        text = NORMALIZATIONS[name](text)
    return text


def retention(adapter: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """How much general language modelling an adapter keeps, from two runs of the same perplexity suite.

    `retention` is base bits-per-byte over adapter bits-per-byte: 1.0 keeps it all, below 1.0 loses
    some, above 1.0 improves it. The base result is computed once per base model and reused (cache it
    by suite id, suite version and the base's artifact hash).
    """
    for key in ("id", "version"):
        if adapter["suite"][key] != base["suite"][key]:
            raise EngineInputError(
                f"results of different suites: {adapter['suite'][key]!r} vs {base['suite'][key]!r}",
                field=f"suite.{key}",
            )
    if adapter["settings"] != base["settings"]:
        raise EngineInputError("results computed with different settings", field="settings")

    def value(result: Mapping[str, Any], name: str) -> float:
        return result["metrics"][name]["value"]

    return {
        "suite": {"id": base["suite"]["id"], "version": base["suite"]["version"]},
        "retention": value(base, "bits_per_byte") / value(adapter, "bits_per_byte"),
        "bits_per_byte_delta": value(adapter, "bits_per_byte") - value(base, "bits_per_byte"),
        "word_perplexity_ratio": _ratio(value(adapter, "word_perplexity"), value(base, "word_perplexity")),
        "byte_perplexity_ratio": _ratio(value(adapter, "byte_perplexity"), value(base, "byte_perplexity")),
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    # Perplexities beyond float range come back from JSON as null.
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def stacking_score(
    *, base: float, alone: float, stacked: float, higher_is_better: bool = True, min_gain: float = 1e-9
) -> float | None:
    """(stacked − base) / (alone − base): the share of an adapter's own gain that survives stacking.

    1.0 keeps the whole gain, 0.0 loses it, negative ends below the base, above 1.0 the stack helps
    more than the adapter alone. None when the adapter alone gains `min_gain` or less (set it to the
    metric's resolution, e.g. 1/n for accuracy over n items): there is no gain to keep a share of.
    """
    sign = 1.0 if higher_is_better else -1.0
    gain_alone = sign * (alone - base)
    if not gain_alone > min_gain:
        return None
    return sign * (stacked - base) / gain_alone


def stacking_summary(
    base: Mapping[str, float],
    alone: Mapping[str, float],
    stacked: Mapping[str, float],
    *,
    higher_is_better: bool = True,
    min_gain: float = 1e-9,
) -> dict[str, Any]:
    """Stacking scores of every adapter of a stack, keyed by adapter, each on its own task's metric.

    `base[a]`, `alone[a]` and `stacked[a]` are the scores on adapter a's task of the base model, of
    a alone, and of the whole stack. `mean` and `min` are over the adapters whose score is defined.
    """
    keys = sorted(base)
    if sorted(alone) != keys or sorted(stacked) != keys:
        raise EngineInputError("base, alone and stacked scores must name the same adapters", field="adapters")
    per_adapter = {
        key: stacking_score(
            base=base[key], alone=alone[key], stacked=stacked[key], higher_is_better=higher_is_better, min_gain=min_gain
        )
        for key in keys
    }
    defined = [score for score in per_adapter.values() if score is not None]
    return {
        "per_adapter": per_adapter,
        "mean": mean(defined) if defined else None,
        "min": min(defined) if defined else None,
    }

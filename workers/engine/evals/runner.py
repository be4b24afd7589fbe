"""Run a suite on a backend and return one JSON-safe, self-describing result.

A result says which suite (id, version, parameters), which model (files, adapters and weights),
which settings and library versions produced it, the metrics with their stderr, and every
per-item record, so the hub can cache it by (suite id, suite version, artifact hash), show why an
item was right or wrong, and re-score records with `suite.metrics(records)` without a model.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any, Protocol

from workers.engine.errors import EngineInputError
from workers.engine.evals.backends import Backend, library_versions
from workers.engine.evals.perplexity import GENERAL_PERPLEXITY_ID, general_perplexity_suite

RESULT_SCHEMA = 1


class Suite(Protocol):
    id: str
    version: str
    kind: str

    def describe(self) -> dict[str, Any]: ...

    def settings(self, backend: Backend) -> dict[str, Any]: ...

    def run(self, backend: Backend) -> list[dict[str, Any]]: ...

    def metrics(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]: ...


def builtin_suite(suite_id: str, version: str | None = None) -> Suite:
    """A suite that ships with the engine, by id; with `version`, refuse if the engine's differs."""
    builders = {GENERAL_PERPLEXITY_ID: general_perplexity_suite}
    if suite_id not in builders:
        raise EngineInputError(f"unknown suite {suite_id!r}; built in: {sorted(builders)}", field="suite")
    suite = builders[suite_id]()
    if version is not None and version != suite.version:
        raise EngineInputError(f"this engine has {suite_id} version {suite.version}, not {version}", field="version")
    return suite


def run_suite(suite: Suite, backend: Backend, *, seed: int = 0) -> dict[str, Any]:
    """Evaluate `backend` on `suite`. Deterministic: scoring and greedy decoding draw no random numbers;
    the seed is still set and recorded so that any future sampling step is reproducible."""
    _seed_everything(seed)
    started = time.perf_counter()
    records = suite.run(backend)
    seconds = time.perf_counter() - started
    result = {
        "schema": RESULT_SCHEMA,
        "suite": suite.describe(),
        "seed": seed,
        "model": backend.describe(),
        "settings": suite.settings(backend),
        "metrics": suite.metrics(records),
        "records": records,
        "versions": library_versions(),
        "timing": {"seconds": seconds},
    }
    return json_safe(result)


def json_safe(value: Any) -> Any:
    """Plain JSON types only: tuples become lists, NaN and infinities become null (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # a GGUF-only worker has no torch
        return
    torch.manual_seed(seed)

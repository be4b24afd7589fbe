"""Combining methods: their names, parameter schemas, and whether their combined delta stays low-rank.

The task-arithmetic family, as in mergekit's registry: each preset fixes how deltas are
sparsified and whether signs must agree, and sets defaults for the knobs a recipe may change.
The math is one function, `stacking.generalized_task_arithmetic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.engine.errors import EngineInputError, quote
from workers.engine.fields import (
    REQUIRED,
    Parser,
    boolean,
    choice,
    density,
    finite,
    int_in,
    mapping,
    parse_params,
    reject_unknown,
)
from workers.engine.lora import MAX_RANK

GTA_PRESETS: dict[str, dict[str, Any]] = {
    "task_arithmetic": {"sparsify": "none", "consensus": "none", "normalize": False, "rescale": False},
    "ties": {"sparsify": "magnitude", "consensus": "sum", "normalize": True, "rescale": False},
    "dare_ties": {"sparsify": "random", "consensus": "sum", "normalize": False, "rescale": True},
    "dare_linear": {"sparsify": "random", "consensus": "none", "normalize": False, "rescale": True},
    "magnitude_prune": {"sparsify": "magnitude", "consensus": "none", "normalize": False, "rescale": False},
}
# Methods whose combined delta stays low-rank, so an adapter output can hold it without loss.
LOW_RANK_METHODS = ("linear", "cat", "svd")


def _gta_schema(preset: Mapping[str, Any]) -> dict[str, tuple[Parser, Any]]:
    schema: dict[str, tuple[Parser, Any]] = {"lambda": (finite, 1.0), "normalize": (boolean, preset["normalize"])}
    if preset["sparsify"] != "none":
        schema["density"] = (density, REQUIRED)
        schema["rescale"] = (boolean, preset["rescale"])
    if preset["sparsify"] == "random":
        schema["seed"] = (int_in(0, 2**63 - 1), 0)
    if preset["consensus"] != "none":
        schema["consensus"] = (choice("sum", "count"), preset["consensus"])
    return schema


METHOD_SCHEMAS: dict[str, dict[str, tuple[Parser, Any]]] = {
    "linear": {},
    "cat": {},
    "svd": {"rank": (int_in(1, MAX_RANK), REQUIRED)},
    **{name: _gta_schema(preset) for name, preset in GTA_PRESETS.items()},
}


@dataclass(frozen=True)
class MethodSpec:
    """A combining method and its parameters, defaults filled in."""

    name: str
    params: dict[str, Any]

    @property
    def knobs(self) -> dict[str, Any]:
        """All keyword arguments of `generalized_task_arithmetic` for a task-arithmetic preset."""
        preset = GTA_PRESETS[self.name]
        return {
            "sparsify": preset["sparsify"],
            "density": self.params.get("density", 1.0),
            "seed": self.params.get("seed", 0),
            "consensus": self.params.get("consensus", preset["consensus"]),
            "normalize": self.params["normalize"],
            "rescale": self.params.get("rescale", False),
            "lam": self.params["lambda"],
        }

    @classmethod
    def parse(cls, raw: Any) -> MethodSpec:
        """Accept "linear" or {"name": "ties", "params": {...}}."""
        if isinstance(raw, str):
            raw = {"name": raw}
        raw = mapping(raw, "method")
        reject_unknown(raw, ("name", "params"), "method")
        name = raw.get("name")
        if not isinstance(name, str) or name not in METHOD_SCHEMAS:
            raise EngineInputError(
                f"unknown method {quote(name)}; expected one of {', '.join(METHOD_SCHEMAS)}", field="method.name", code="method"
            )
        return cls(name=name, params=parse_params(raw.get("params") or {}, METHOD_SCHEMAS[name], "method.params"))

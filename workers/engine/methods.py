"""Combining methods, one object each: the one place a method is defined.

A `Method` is its name, a one-line description, its parameter schema (each parameter with a one-line
description), whether its combined delta stays low-rank, which outputs it supports, and its delta
function. The delta function is named by a dotted path and imported only when a stack is built, so that
validating a recipe (in the web process, or the CLI) never imports torch.

The task-arithmetic family, as in mergekit's registry: each preset fixes how deltas are sparsified
and whether signs must agree, and sets defaults for the knobs a recipe may change. The math is one
function, `stacking.generalized_task_arithmetic`, behind one delta function for the whole family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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

DEFAULT_METHOD = "linear"


@dataclass(frozen=True)
class Param:
    """One parameter of a method: how its value is checked, its default (or REQUIRED), what it means."""

    parse: Parser
    default: Any
    description: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Method:
    """One combining method (see the module's notes)."""

    name: str
    description: str
    params: Mapping[str, Param]
    # Its combined delta stays low-rank, so an adapter output holds it exactly (without a `rank`): its delta
    # function returns factors (A, B, energy kept); otherwise it returns the dense delta.
    low_rank: bool
    delta: str  # "module:function" of its delta function, in workers.engine.stacking
    # The output kinds it cannot be built into (llama.cpp's run-time stacking is a weighted sum: only linear).
    unsupported_outputs: frozenset[str] = frozenset({"runtime"})
    # A task-arithmetic preset: the fixed knobs of `generalized_task_arithmetic` (empty for the others).
    preset: Mapping[str, Any] = field(default_factory=dict)

    def supports_output(self, output_type: str) -> bool:
        return output_type not in self.unsupported_outputs

    def load_delta(self) -> Callable[..., Any]:
        module, _, function = self.delta.partition(":")
        return getattr(importlib.import_module(module), function)

    def parse_params(self, raw: Any, field: str) -> dict[str, Any]:
        return parse_params(raw, {name: (p.parse, p.default) for name, p in self.params.items()}, field)


LOW_RANK_DELTA = "workers.engine.stacking:low_rank_factors"
TASK_ARITHMETIC_DELTA = "workers.engine.stacking:task_arithmetic_delta"


def _task_arithmetic(name: str, description: str, *, sparsify: str, consensus: str, normalize: bool,
                     rescale: bool) -> Method:
    """A preset of the task-arithmetic family: its parameter schema follows from the knobs it uses."""
    params = {"lambda": Param(finite, 1.0, "scales the merged delta"),
              "normalize": Param(boolean, normalize, "divide by the sum of the weights that count")}
    if sparsify != "none":
        params["density"] = Param(density, REQUIRED, "the fraction of each delta's entries kept, in (0, 1]")
        params["rescale"] = Param(boolean, rescale, "rescale what is kept to the delta's original L1 norm")
    if sparsify == "random":
        params["seed"] = Param(int_in(0, 2**63 - 1), 0, "seeds the random drop (with the module's name)")
    if consensus != "none":
        params["consensus"] = Param(choice("sum", "count"), consensus,
                                    "how the sign vote is taken: by summed values or by counted signs")
    return Method(name, description, params, low_rank=False, delta=TASK_ARITHMETIC_DELTA,
                  preset={"sparsify": sparsify, "consensus": consensus})


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("linear", "the weighted sum of the adapters' deltas, exactly", {}, low_rank=True, delta=LOW_RANK_DELTA,
           unsupported_outputs=frozenset()),
    Method("cat", "the weighted sum as one adapter of the summed rank (exact; for an adapter output)", {},
           low_rank=True, delta=LOW_RANK_DELTA),
    Method("svd", "the weighted sum truncated to its best low-rank approximation",
           {"rank": Param(int_in(1, MAX_RANK), REQUIRED, "the rank kept")}, low_rank=True, delta=LOW_RANK_DELTA),
    _task_arithmetic("task_arithmetic", "the weighted sum of the deltas, scaled by lambda",
                     sparsify="none", consensus="none", normalize=False, rescale=False),
    _task_arithmetic("ties", "TIES: trim each delta to its largest entries, elect a sign, average those that agree",
                     sparsify="magnitude", consensus="sum", normalize=True, rescale=False),
    _task_arithmetic("dare_ties", "DARE drop and rescale, then TIES sign election",
                     sparsify="random", consensus="sum", normalize=False, rescale=True),
    _task_arithmetic("dare_linear", "DARE: drop entries at random, rescale the rest, sum",
                     sparsify="random", consensus="none", normalize=False, rescale=True),
    _task_arithmetic("magnitude_prune", "keep each delta's largest entries, sum",
                     sparsify="magnitude", consensus="none", normalize=False, rescale=False),
)}


def low_rank_method_names() -> list[str]:
    return [m.name for m in METHODS.values() if m.low_rank]


@dataclass(frozen=True)
class MethodSpec:
    """A combining method and its parameters, defaults filled in."""

    name: str
    params: dict[str, Any]

    @property
    def method(self) -> Method:
        return METHODS[self.name]

    @property
    def knobs(self) -> dict[str, Any]:
        """All keyword arguments of `generalized_task_arithmetic` for a task-arithmetic preset."""
        preset = self.method.preset
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
        if not isinstance(name, str) or name not in METHODS:
            raise EngineInputError(
                f"unknown method {quote(name)}; expected one of {', '.join(METHODS)}", field="method.name", code="method"
            )
        return cls(name=name, params=METHODS[name].parse_params(raw.get("params") or {}, "method.params"))

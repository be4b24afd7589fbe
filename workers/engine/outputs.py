"""What a stack can be built into: every output kind, its parameters, and where its builder lives.

An output kind is its name, a parser of its own parameters (given the method, since some outputs need a
low-rank method) and the dotted path of its builder, `builder(ctx: build.BuildContext) -> dict`, which
writes the files into `ctx.staging` and returns extra manifest entries. Builders are imported only when a
build runs, so validating a recipe (in the web process) never imports torch. `register_output` lets
another module add a kind without editing this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workers.engine.errors import EngineInputError
from workers.engine.fields import choice, int_in, mapping, parse_params
from workers.engine.lora import MAX_RANK
from workers.engine.methods import METHODS, MethodSpec, low_rank_method_names

OUTPUT_DTYPES = ("bf16", "fp16", "fp32")
DEFAULT_MAX_SHARD_BYTES = 5_000_000_000  # transformers' own default shard size ("5GB")
QUANT_OUTPUTS = {"gguf-q8_0": "Q8_0", "gguf-q6_k": "Q6_K", "gguf-q5_k_m": "Q5_K_M", "gguf-q4_k_m": "Q4_K_M",
                 "gguf-q4_0": "Q4_0"}
RUNTIME_MANIFEST = "runtime.json"  # the runtime bundle's index of its base, adapters and scales


@dataclass(frozen=True)
class OutputKind:
    """One kind of artifact a stack can be built into (see the module's notes)."""

    name: str
    parse: Callable[[Mapping[str, Any], MethodSpec], dict[str, Any]]
    builder: str
    # Why a method that does not support this kind (`Method.unsupported_outputs`) cannot be built into it.
    unsupported_because: str = ""

    def load_builder(self) -> Callable[..., dict[str, Any]]:
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)


OUTPUT_KINDS: dict[str, OutputKind] = {}


def register_output(kind: OutputKind) -> OutputKind:
    """Make `kind.name` a valid `output.type` (registering a name again replaces it, e.g. on reload)."""
    OUTPUT_KINDS[kind.name] = kind
    return kind


def _parse_merged(raw: Mapping[str, Any], method: MethodSpec) -> dict[str, Any]:
    schema = {"dtype": (choice(*OUTPUT_DTYPES), "bf16"), "max_shard_bytes": (int_in(1, 2**62), DEFAULT_MAX_SHARD_BYTES)}
    return parse_params(raw, schema, "output")


def _parse_adapter(raw: Mapping[str, Any], method: MethodSpec) -> dict[str, Any]:
    params = parse_params(raw, {"rank": (int_in(1, MAX_RANK), None), "dtype": (choice(*OUTPUT_DTYPES), "fp32")}, "output")
    if params["rank"] is None and not method.method.low_rank:
        raise EngineInputError(
            f"is required for method {method.name}: its combined delta is not low-rank, so the adapter is "
            f"its SVD truncated to this rank (only {', '.join(low_rank_method_names())} can be stored exactly)",
            field="output.rank", code="required",
        )
    return params


def _no_params(raw: Mapping[str, Any], method: MethodSpec) -> dict[str, Any]:
    if raw:
        raise EngineInputError(f"takes no parameters, got {', '.join(sorted(raw))}", field="output", code="output")
    return {}


# Every output kind, in one place. GGUF builders live beside their llama.cpp code (gguf_outputs).
register_output(OutputKind("merged", _parse_merged, "workers.engine.build:build_merged"))
register_output(OutputKind("adapter", _parse_adapter, "workers.engine.build:build_adapter"))
register_output(OutputKind("gguf-f16", _no_params, "workers.engine.gguf_outputs:build_gguf"))
for _name in QUANT_OUTPUTS:
    register_output(OutputKind(_name, _no_params, "workers.engine.gguf_outputs:build_gguf"))
register_output(OutputKind(
    "runtime", _no_params, "workers.engine.gguf_outputs:build_runtime",
    unsupported_because="llama.cpp stacks adapters at run time as a weighted sum, which is "
                        + " or ".join(f"the `{m.name}` method" for m in METHODS.values() if m.supports_output("runtime"))
                        + " only"))


@dataclass(frozen=True)
class OutputSpec:
    type: str
    params: dict[str, Any]

    @property
    def kind(self) -> OutputKind:
        return OUTPUT_KINDS[self.type]

    @classmethod
    def parse(cls, raw: Any, method: MethodSpec) -> OutputSpec:
        """Accept "merged" or {"type": "merged", "dtype": "bf16", ...}."""
        if isinstance(raw, str):
            raw = {"type": raw}
        raw = dict(mapping(raw, "output"))
        name = raw.pop("type", None)
        kind = OUTPUT_KINDS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise EngineInputError(f"unknown output type; expected one of {', '.join(OUTPUT_KINDS)}", field="output.type", code="output")
        if not method.method.supports_output(kind.name):
            raise EngineInputError(f"{kind.unsupported_because or f'method {method.name} cannot be built into it'}; "
                                   f"{method.name} needs a merged output such as gguf-q4_k_m", field="output.type",
                                   code="output")
        return cls(type=kind.name, params=kind.parse(raw, method))

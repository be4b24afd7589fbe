"""The LoRA rules: what a stackable PEFT adapter is, read from its config and safetensors header alone.

`read_adapter` checks a folder and indexes its modules without reading a weight; `check_compatible`
refuses adapters that do not fit the base model before a build reads anything. Only plain LoRA on
linear modules is stacked, since other variants' deltas are not s · B A.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.engine.errors import EngineInputError, quote
from workers.engine.fields import is_number
from workers.engine.safetensors_io import FLOAT_DTYPES, TensorInfo, read_header

MAX_RANK = 1 << 16
ADAPTER_CONFIG = "adapter_config.json"
# init_lora_weights values whose adapter only holds on a residual of the base, not the base itself
BASE_REWRITING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")

ADAPTER_TENSOR_RE = re.compile(r"base_model\.model\.(?P<module>.+)\.lora_(?P<factor>[AB])\.weight")


@dataclass(frozen=True)
class LoraModule:
    """One adapted module: where its factors lie and the scale s of ΔW = s · B A."""

    name: str  # the base module, e.g. "model.layers.0.self_attn.q_proj"
    a: TensorInfo  # lora_A.weight: rank × in_features
    b: TensorInfo  # lora_B.weight: out_features × rank
    scale: float  # alpha / r, or alpha / sqrt(r) for rsLoRA

    @property
    def rank(self) -> int:
        return self.a.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(out_features, in_features) of the base weight this module updates."""
        return self.b.shape[0], self.a.shape[1]


@dataclass(frozen=True)
class AdapterInfo:
    """A PEFT LoRA adapter folder, checked and indexed by module; no weight has been read."""

    ref: str
    dir: Path
    weights_path: Path
    config: dict[str, Any]
    modules: dict[str, LoraModule]


def pattern_value(patterns: Mapping[str, Any], module: str, default: Any, *, ref: str = "", field: str) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: the first key (a regex) that ends the module name."""
    for key, value in patterns.items():
        try:
            matched = isinstance(key, str) and len(key) <= 200 and re.match(rf"(.*\.)?({key})$", module)
        except re.error:
            where = f"{ref}: " if ref else ""
            raise EngineInputError(f"{where}{quote(key)} is not a valid pattern", file=ADAPTER_CONFIG, field=field) from None
        if matched:
            return value
    return default


def module_rank(config: Mapping[str, Any], module: str, *, ref: str = "") -> Any:
    """The rank PEFT gives `module`: its rank_pattern entry, else r."""
    return pattern_value(config.get("rank_pattern") or {}, module, config.get("r"), ref=ref, field="rank_pattern")


def module_scale(config: Mapping[str, Any], module: str, rank: int, *, ref: str = "") -> float:
    """The scale s of ΔW = s · B A that PEFT applies to `module`: alpha / r, or alpha / sqrt(r) with rsLoRA,
    alpha being its alpha_pattern entry, else lora_alpha."""
    alpha = pattern_value(config.get("alpha_pattern") or {}, module, config.get("lora_alpha"), ref=ref,
                          field="alpha_pattern")
    if not is_number(alpha) or alpha <= 0:
        raise EngineInputError(f"{ref + ': ' if ref else ''}alpha for {module} is {quote(alpha)}; expected a positive "
                               "number", file=ADAPTER_CONFIG, field="alpha_pattern", code="config")
    return float(alpha) / math.sqrt(rank) if config.get("use_rslora") else float(alpha) / rank


def read_adapter(adapter_dir: Path | str, *, ref: str = "") -> AdapterInfo:
    """Check a PEFT LoRA folder (config and safetensors header) and index its modules.

    Only plain LoRA on linear modules is stacked: DoRA, trained biases, modules_to_save,
    fan_in_fan_out and embedding LoRA are refused, since their deltas are not s · B A.
    """
    adapter_dir = Path(adapter_dir)
    ref = ref or adapter_dir.name
    config_path = adapter_dir / "adapter_config.json"
    weights_path = adapter_dir / "adapter_model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise EngineInputError(f"{ref}: missing {path.name}", file=path.name, code="missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EngineInputError(f"{ref}: not valid JSON ({exc})", file=config_path.name) from None
    if not isinstance(config, dict):
        raise EngineInputError(f"{ref}: must be a JSON object", file=config_path.name)
    _check_plain_lora(config, ref, config_path.name)

    factors: dict[str, dict[str, TensorInfo]] = {}
    for name, info in read_header(weights_path).tensors.items():
        match = ADAPTER_TENSOR_RE.fullmatch(name)
        if match is None:
            raise EngineInputError(
                f"{ref}: unexpected tensor; only base_model.model.<module>.lora_A/B.weight are stacked",
                file=weights_path.name, field=name, code="tensor",
            )
        if info.dtype not in FLOAT_DTYPES or len(info.shape) != 2:
            raise EngineInputError(f"{ref}: expected a 2-D float tensor", file=weights_path.name, field=name, code="shape")
        factors.setdefault(match["module"], {})[match["factor"]] = info
    if not factors:
        raise EngineInputError(f"{ref}: the adapter has no LoRA tensors", file=weights_path.name, code="empty")

    modules: dict[str, LoraModule] = {}
    for module, pair in sorted(factors.items()):
        if set(pair) != {"A", "B"}:
            missing = "lora_B" if "A" in pair else "lora_A"
            raise EngineInputError(f"{ref}: {missing} is missing", file=weights_path.name, field=module, code="tensor")
        rank = pair["A"].shape[0]
        expected = module_rank(config, module, ref=ref)
        if pair["B"].shape[1] != rank or rank != expected or rank < 1:
            raise EngineInputError(
                f"{ref}: lora_A is {pair['A'].shape}, lora_B is {pair['B'].shape}, config rank is {expected}",
                file=weights_path.name, field=module, code="shape",
            )
        modules[module] = LoraModule(name=module, a=pair["A"], b=pair["B"], scale=module_scale(config, module, rank, ref=ref))
    return AdapterInfo(ref=ref, dir=adapter_dir, weights_path=weights_path, config=config, modules=modules)


def _check_plain_lora(config: Mapping[str, Any], ref: str, file: str) -> None:
    def refuse(field: str, why: str) -> None:
        raise EngineInputError(f"{ref}: {why}", file=file, field=field, code="unsupported")

    if config.get("peft_type", "LORA") != "LORA":
        refuse("peft_type", f"only LORA adapters can be stacked, not {quote(config.get('peft_type'))}")
    if isinstance(config.get("r"), bool) or not isinstance(config.get("r"), int) or not 1 <= config["r"] <= MAX_RANK:
        refuse("r", "expected a positive integer rank")
    if not is_number(config.get("lora_alpha")):
        refuse("lora_alpha", "expected a finite number")
    for flag in ("use_dora", "fan_in_fan_out", "lora_bias", "use_rslora"):
        if not isinstance(config.get(flag) or False, bool):
            refuse(flag, "expected true or false")
    for flag, why in (("use_dora", "DoRA"), ("fan_in_fan_out", "fan_in_fan_out"), ("lora_bias", "LoRA biases")):
        if config.get(flag):
            refuse(flag, f"{why} cannot be stacked as a plain low-rank delta")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_REWRITING_INITS):
        refuse("init_lora_weights", f"{quote(init)} adapters are trained against a rewritten base, not this one")
    if config.get("bias", "none") != "none":
        refuse("bias", "trained biases cannot be stacked; expected bias: none")
    for field in ("modules_to_save", "target_parameters", "trainable_token_indices"):
        if config.get(field):
            refuse(field, "fully trained modules or parameters cannot be stacked as LoRA deltas")
    for field in ("rank_pattern", "alpha_pattern"):
        if not isinstance(config.get(field) or {}, dict):
            refuse(field, "expected an object")


def check_compatible(adapters: Sequence[AdapterInfo], base_manifest: Mapping[str, Mapping[str, int]]) -> None:
    """Refuse adapters whose modules are not linear modules of the base or have other shapes.

    `base_manifest` is `shapes.module_shapes(...)` of the base model. All problems are reported
    at once (the first few), before any weight is read.
    """
    problems: list[str] = []
    for adapter in adapters:
        missing = [m for m in adapter.modules if m not in base_manifest]
        if len(missing) == len(adapter.modules):
            problems.append(
                f"{adapter.ref}: none of its {len(missing)} modules (e.g. {missing[0]}) exist in the base model; "
                "it was trained for another model"
            )
            continue
        problems.extend(f"{adapter.ref}: module {m} is not a linear module of the base model" for m in missing)
        for module in adapter.modules.values():
            base = base_manifest.get(module.name)
            if base is not None and module.shape != (base["out"], base["in"]):
                problems.append(
                    f"{adapter.ref}: {module.name} updates a {module.shape[0]}x{module.shape[1]} weight "
                    f"but the base model's is {base['out']}x{base['in']}"
                )
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise EngineInputError("; ".join(problems[:5]) + more, field="adapters", code="incompatible")

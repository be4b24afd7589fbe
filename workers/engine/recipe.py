"""Stack recipes: which base and adapters to combine, by which method, into which output.

A recipe is validated once (`Recipe.from_dict`, every error an EngineInputError naming the field),
then written in one canonical form: sorted keys, normalized numbers and every default filled in,
so two requests that mean the same build have the same `hash`. The hub uses that hash to hand out
an existing artifact instead of building again.

Outputs form an open registry (`OUTPUT_KINDS`, `register_output`): another module adds, say, a
GGUF output by registering its parameter parser and the dotted path of its builder, without
editing this file. Builders are imported only when a build runs, so this module (and recipe
validation in the web process) never imports torch or Django. `read_adapter` and
`check_compatible` work from safetensors headers alone, so a worker refuses an adapter that does
not fit the base model before it reads a single weight.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.engine import ENGINE_VERSION
from workers.engine.errors import EngineInputError, quote
from workers.engine.safetensors_io import FLOAT_DTYPES, TensorInfo, read_header

MAX_ADAPTERS = 32
# An adapter's weight scales its delta: past this a stack is noise (1e308 makes every tensor inf), never a model.
MAX_WEIGHT = 100.0
MAX_RANK = 65536
DEFAULT_MAX_SHARD_BYTES = 5_000_000_000  # transformers' own default shard size ("5GB")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")  # patterns here are used with fullmatch
ADAPTER_REF_RE = re.compile(r"(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95})@(?P<version>[0-9]{1,9})")
WEIGHT_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors")
OUTPUT_DTYPES = ("bf16", "fp16", "fp32")
# init_lora_weights values whose adapter only holds on a residual of the base, not the base itself
BASE_REWRITING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")

# ---------------------------------------------------------------------------------------------
# Small validators: each takes the raw value and the dotted field name, returns the normal form.

Parser = Callable[[Any, str], Any]
REQUIRED = object()


def _real(value: Any) -> float | None:
    """A finite real number as a float; None for anything else (bools, strings, NaN, 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _is_number(value: Any) -> bool:
    return _real(value) is not None


def _finite(value: Any, field: str) -> float:
    """A real number as a float, rounded to 12 significant digits so 0.1 + 0.2 and 0.3 hash alike."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineInputError(f"expected a number, got {type(value).__name__}", field=field, code="type")
    number = _real(value)
    if number is None:
        raise EngineInputError("must be a finite number", field=field)
    return float(f"{number:.12g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def parse_weight(value: Any, field: str) -> float:
    """An adapter's weight: a finite, non-zero number with |weight| <= MAX_WEIGHT, in its canonical form."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineInputError(f"expected a number, got {type(value).__name__}", field=field, code="type")
    number = _real(value)
    if number is None or abs(number) > MAX_WEIGHT:
        shown = f"{number:g}" if number is not None else "not finite" if isinstance(value, float) else "too large"
        raise EngineInputError(f"weight {shown} is out of range; a weight is a number from {-MAX_WEIGHT:g} to "
                               f"{MAX_WEIGHT:g}", field=field)
    weight = _finite(number, field)
    if weight == 0.0:
        raise EngineInputError("a weight of 0 adds nothing; remove the adapter instead", field=field)
    return weight


def _density(value: Any, field: str) -> float:
    density = _finite(value, field)
    if not 0.0 < density <= 1.0:
        raise EngineInputError(f"density must be in (0, 1], got {density}", field=field)
    return density


def _int_in(low: int, high: int) -> Parser:
    def parse(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise EngineInputError(f"expected an integer in {low}..{high}, got {quote(value)}", field=field, code="type")
        return value

    return parse


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise EngineInputError(f"expected true or false, got {quote(value)}", field=field, code="type")
    return value


def _choice(*choices: str) -> Parser:
    def parse(value: Any, field: str) -> str:
        if value not in choices:
            raise EngineInputError(f"expected one of {', '.join(choices)}, got {quote(value)}", field=field)
        return value

    return parse


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EngineInputError(f"expected an object, got {type(value).__name__}", field=field, code="type")
    return value


def _reject_unknown(raw: Mapping[str, Any], allowed: Iterable[str], field: str) -> None:
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        where = f"{field}.{unknown[0]}" if field else str(unknown[0])
        listed = ", ".join(sorted(allowed)) or "none"
        raise EngineInputError(f"unknown key {quote(unknown[0])} (allowed: {listed})", field=where)


def _parse_params(raw: Any, schema: Mapping[str, tuple[Parser, Any]], field: str) -> dict[str, Any]:
    """Validate `raw` against {name: (parser, default or REQUIRED)}; unknown names are errors."""
    raw = _mapping(raw, field)
    _reject_unknown(raw, schema, field)
    params = {}
    for name, (parse, default) in schema.items():
        if name in raw and raw[name] is not None:
            params[name] = parse(raw[name], f"{field}.{name}")
        elif default is REQUIRED:
            raise EngineInputError("is required", field=f"{field}.{name}", code="required")
        else:
            params[name] = default
    return params


# ---------------------------------------------------------------------------------------------
# Methods

# The task-arithmetic family, as in mergekit's registry: each preset fixes how deltas are
# sparsified and whether signs must agree, and sets defaults for the knobs a recipe may change.
# The math is one function, `stacking.generalized_task_arithmetic`.
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
    schema: dict[str, tuple[Parser, Any]] = {"lambda": (_finite, 1.0), "normalize": (_bool, preset["normalize"])}
    if preset["sparsify"] != "none":
        schema["density"] = (_density, REQUIRED)
        schema["rescale"] = (_bool, preset["rescale"])
    if preset["sparsify"] == "random":
        schema["seed"] = (_int_in(0, 2**63 - 1), 0)
    if preset["consensus"] != "none":
        schema["consensus"] = (_choice("sum", "count"), preset["consensus"])
    return schema


METHOD_SCHEMAS: dict[str, dict[str, tuple[Parser, Any]]] = {
    "linear": {},
    "cat": {},
    "svd": {"rank": (_int_in(1, MAX_RANK), REQUIRED)},
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
        raw = _mapping(raw, "method")
        _reject_unknown(raw, ("name", "params"), "method")
        name = raw.get("name")
        if not isinstance(name, str) or name not in METHOD_SCHEMAS:
            raise EngineInputError(
                f"unknown method {quote(name)}; expected one of {', '.join(METHOD_SCHEMAS)}", field="method.name", code="method"
            )
        return cls(name=name, params=_parse_params(raw.get("params") or {}, METHOD_SCHEMAS[name], "method.params"))


# ---------------------------------------------------------------------------------------------
# Outputs: an open registry


@dataclass(frozen=True)
class OutputKind:
    """One kind of artifact a stack can be built into.

    `parse(params, method)` validates the output's own parameters and returns them with defaults
    filled in (raising EngineInputError with `field="output.<name>"`). `builder` is the dotted
    path "package.module:function" of `builder(ctx: workers.engine.build.BuildContext) -> dict`:
    it writes its files into `ctx.staging` and returns extra manifest entries. It is imported only
    when a build runs, so validating a recipe stays cheap and torch-free.
    """

    name: str
    parse: Callable[[Mapping[str, Any], MethodSpec], dict[str, Any]]
    builder: str

    def load_builder(self) -> Callable[..., dict[str, Any]]:
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)


OUTPUT_KINDS: dict[str, OutputKind] = {}


def register_output(kind: OutputKind) -> OutputKind:
    """Make `kind.name` a valid `output.type` (registering a name again replaces it, e.g. on reload)."""
    OUTPUT_KINDS[kind.name] = kind
    return kind


def _parse_merged(raw: Mapping[str, Any], method: MethodSpec) -> dict[str, Any]:
    schema = {"dtype": (_choice(*OUTPUT_DTYPES), "bf16"), "max_shard_bytes": (_int_in(1, 2**62), DEFAULT_MAX_SHARD_BYTES)}
    return _parse_params(raw, schema, "output")


def _parse_adapter(raw: Mapping[str, Any], method: MethodSpec) -> dict[str, Any]:
    params = _parse_params(raw, {"rank": (_int_in(1, MAX_RANK), None), "dtype": (_choice(*OUTPUT_DTYPES), "fp32")}, "output")
    if params["rank"] is None and method.name not in LOW_RANK_METHODS:
        raise EngineInputError(
            f"is required for method {method.name}: its combined delta is not low-rank, so the adapter is "
            f"its SVD truncated to this rank (only {', '.join(LOW_RANK_METHODS)} can be stored exactly)",
            field="output.rank", code="required",
        )
    return params


register_output(OutputKind("merged", _parse_merged, "workers.engine.build:build_merged"))
register_output(OutputKind("adapter", _parse_adapter, "workers.engine.build:build_adapter"))


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
        raw = dict(_mapping(raw, "output"))
        name = raw.pop("type", None)
        kind = OUTPUT_KINDS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise EngineInputError(f"unknown output type; expected one of {', '.join(OUTPUT_KINDS)}", field="output.type", code="output")
        return cls(type=kind.name, params=kind.parse(raw, method))


# ---------------------------------------------------------------------------------------------
# The recipe


@dataclass(frozen=True)
class BaseModelRef:
    """The base model: its hub name and the sha256 of each of its weight files."""

    name: str
    sha256: dict[str, str]


@dataclass(frozen=True)
class AdapterRef:
    """One adapter of the stack: hub ref ("owner/name@version"), content sha256, and weight."""

    ref: str
    sha256: str
    weight: float


@dataclass(frozen=True)
class Recipe:
    base: BaseModelRef
    adapters: tuple[AdapterRef, ...]
    method: MethodSpec
    output: OutputSpec

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Validate a recipe as sent by a client or stored by the hub; defaults are filled in."""
        data = _mapping(data, "recipe")
        _reject_unknown(data, ("base", "adapters", "method", "output"), "")
        for key in ("base", "adapters", "method", "output"):
            if key not in data:
                raise EngineInputError("is required", field=key, code="required")
        method = MethodSpec.parse(data["method"])
        return cls(
            base=_parse_base(data["base"]),
            adapters=_parse_adapters(data["adapters"]),
            method=method,
            output=OutputSpec.parse(data["output"], method),
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: what `from_dict` accepts, with every default present."""
        return {
            "base": {"name": self.base.name, "sha256": dict(sorted(self.base.sha256.items()))},
            "adapters": [{"ref": a.ref, "sha256": a.sha256, "weight": a.weight} for a in self.adapters],
            "method": {"name": self.method.name, "params": dict(self.method.params)},
            "output": {"type": self.output.type, **self.output.params},
        }

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON and the engine version: equal for equivalent recipes."""
        return hashlib.sha256((self.canonical_json() + ENGINE_VERSION).encode()).hexdigest()


def _sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise EngineInputError("expected a sha256 as 64 hexadecimal characters", field=field, code="sha256")
    return value.lower()


def _parse_base(raw: Any) -> BaseModelRef:
    raw = _mapping(raw, "base")
    _reject_unknown(raw, ("name", "sha256"), "base")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise EngineInputError("expected the base model's hub name (1-200 characters)", field="base.name")
    hashes = _mapping(raw.get("sha256"), "base.sha256")
    if not hashes:
        raise EngineInputError("expected {weight file name: sha256} for each weight file", field="base.sha256")
    for file in hashes:
        if not isinstance(file, str) or not WEIGHT_FILE_RE.fullmatch(file):
            raise EngineInputError(f"{quote(file)} is not a plain *.safetensors file name", field="base.sha256")
    return BaseModelRef(name=name.strip(), sha256={f: _sha256(h, f"base.sha256.{f}") for f, h in sorted(hashes.items())})


def _parse_adapters(raw: Any) -> tuple[AdapterRef, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise EngineInputError("expected a list of adapters", field="adapters", code="type")
    if not raw:
        raise EngineInputError("a stack needs at least one adapter", field="adapters", code="required")
    if len(raw) > MAX_ADAPTERS:
        raise EngineInputError(f"at most {MAX_ADAPTERS} adapters per stack, got {len(raw)}", field="adapters")
    adapters: list[AdapterRef] = []
    for index, item in enumerate(raw):
        field = f"adapters[{index}]"
        item = _mapping(item, field)
        _reject_unknown(item, ("ref", "sha256", "weight"), field)
        match = ADAPTER_REF_RE.fullmatch(item.get("ref") if isinstance(item.get("ref"), str) else "")
        if match is None:
            raise EngineInputError('expected "owner/name@version", e.g. "alice/sql-helper@2"', field=f"{field}.ref")
        weight = parse_weight(item.get("weight", 1.0), f"{field}.weight")
        adapter = AdapterRef(
            ref=f"{match['repo']}@{int(match['version'])}", sha256=_sha256(item.get("sha256"), f"{field}.sha256"), weight=weight
        )
        for other in adapters:
            if adapter.ref == other.ref or adapter.sha256 == other.sha256:
                same = "ref" if adapter.ref == other.ref else "sha256"
                raise EngineInputError(
                    f"duplicates {other.ref} (same {same}); give one entry a larger weight instead", field=field, code="duplicate"
                )
        adapters.append(adapter)
    return tuple(adapters)


# ---------------------------------------------------------------------------------------------
# Adapter folders, read from their headers, and the compatibility check

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


def _pattern_value(patterns: Mapping[str, Any], module: str, default: Any, *, ref: str, field: str) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: the first key (a regex) that ends the module name."""
    for key, value in patterns.items():
        try:
            matched = len(key) <= 200 and re.match(rf"(.*\.)?({key})$", module)
        except re.error:
            raise EngineInputError(f"{ref}: {quote(key)} is not a valid pattern", file="adapter_config.json", field=field) from None
        if matched:
            return value
    return default


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

    use_rslora = config.get("use_rslora") or False
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
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
        expected = _pattern_value(rank_pattern, module, config["r"], ref=ref, field="rank_pattern")
        if pair["B"].shape[1] != rank or rank != expected or rank < 1:
            raise EngineInputError(
                f"{ref}: lora_A is {pair['A'].shape}, lora_B is {pair['B'].shape}, config rank is {expected}",
                file=weights_path.name, field=module, code="shape",
            )
        alpha = _pattern_value(alpha_pattern, module, config["lora_alpha"], ref=ref, field="alpha_pattern")
        if not _is_number(alpha):
            raise EngineInputError(f"{ref}: alpha {quote(alpha)} is not a number", file=config_path.name, field=module)
        scale = alpha / math.sqrt(rank) if use_rslora else alpha / rank
        modules[module] = LoraModule(name=module, a=pair["A"], b=pair["B"], scale=scale)
    return AdapterInfo(ref=ref, dir=adapter_dir, weights_path=weights_path, config=config, modules=modules)


def _check_plain_lora(config: Mapping[str, Any], ref: str, file: str) -> None:
    def refuse(field: str, why: str) -> None:
        raise EngineInputError(f"{ref}: {why}", file=file, field=field, code="unsupported")

    if config.get("peft_type", "LORA") != "LORA":
        refuse("peft_type", f"only LORA adapters can be stacked, not {quote(config.get('peft_type'))}")
    if isinstance(config.get("r"), bool) or not isinstance(config.get("r"), int) or not 1 <= config["r"] <= MAX_RANK:
        refuse("r", "expected a positive integer rank")
    if not _is_number(config.get("lora_alpha")):
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


# The GGUF outputs register themselves into OUTPUT_KINDS; they live beside their llama.cpp code.
from workers.engine import gguf_outputs  # noqa: E402, F401

"""Validate an uploaded LoRA adapter (or any upload, via validate_upload) without trusting a byte of it.

Every check is a named `Check` with a message that says which file, field or tensor is wrong and
what was expected. Validation goes on past failures wherever later checks still make sense, so an
uploader sees every problem at once; a check whose prerequisite failed is still reported, as
skipped with the reason. Nothing here unpickles: pickle formats are refused by their name and by their
first bytes (`magic.identify`), whatever the file is called.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.archive import ArchiveLimits, extract_upload, is_archive
from workers.engine.cards import Card, card_base_models
from workers.engine.checks import (
    CARD,
    CARD_CHECKS,
    DEFAULT_MAX_FILE_BYTES,
    Check,
    Checks,
    FolderListing,
    ValidationReport,
    check_card,
    check_file_sizes,
    scan_folder,
    summarize,
)
from workers.engine.datasets import validate_dataset
from workers.engine.errors import EngineInputError, quote
from workers.engine.lora import (
    ADAPTER_TENSOR_RE,
    BASE_REWRITING_INITS,
    MAX_RANK,
    module_rank,
    module_scale,
    pattern_value,
)
from workers.engine.magic import identify, read_head
from workers.engine.safetensors_io import (
    DTYPE_SIZES,
    FLOAT_DTYPES,
    SafetensorsHeader,
    TensorInfo,
    load_tensor_f32,
    read_header,
)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, CARD)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
MAX_CONFIG_BYTES = 1024 * 1024
FINITE_CHUNK = 1 << 22  # elements read at a time by the NaN/Inf scan: 16 MiB of float32
UPLOAD_KINDS = ("adapter", "dataset")

BaseModels = Mapping[str, Mapping[str, Mapping[str, int]]]


# --- the adapter -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsupportedFeature:
    key: str
    is_used: Callable[[Any], bool]
    reason: str


# LoraConfig fields (PEFT 0.21) whose use changes what the saved factors mean, so their delta is not scale · B·A
# on an unchanged base. Fields that only affect training (dropout, eva/velora, layers_to_transform) are fine.
UNSUPPORTED_FEATURES = (
    UnsupportedFeature("use_dora", bool, "DoRA rescales every output by a learned magnitude vector, so its delta is "
                       "not B·A and cannot be summed with other adapters; stacking DoRA is not supported yet"),
    UnsupportedFeature("modules_to_save", bool, "it saves full copies of modules (such as lm_head), which are not "
                       "low-rank deltas and cannot be stacked"),
    UnsupportedFeature("bias", lambda value: value not in (None, "none"), "trained biases are not part of B·A; "
                       "train with bias=\"none\""),
    UnsupportedFeature("lora_bias", bool, "a bias on lora_B is not part of B·A"),
    UnsupportedFeature("fan_in_fan_out", bool, "it stores transposed (Conv1D) factors; the hub's bases use nn.Linear"),
    UnsupportedFeature("init_lora_weights", lambda value: isinstance(value, str) and value.lower().startswith(BASE_REWRITING_INITS),
                       "this init rewrites the base weights, so the adapter only works on that residual base; convert "
                       "it with save_pretrained(..., path_initial_model_for_weight_conversion=...) first"),
    UnsupportedFeature("use_qalora", bool, "QA-LoRA pools the input before lora_A, so its delta is not B·A"),
    UnsupportedFeature("layer_replication", bool, "it changes the base model's layer stack"),
    UnsupportedFeature("trainable_token_indices", bool, "it trains embedding rows, not low-rank deltas"),
    UnsupportedFeature("target_parameters", bool, "LoRA on raw parameters (MoE experts) is not supported yet"),
    UnsupportedFeature("alora_invocation_tokens", bool, "activated LoRA applies only after its invocation tokens, so "
                       "it cannot be merged into the weights"),
    UnsupportedFeature("use_bdlora", bool, "block-diagonal factors are not supported yet"),
    UnsupportedFeature("arrow_config", bool, "Arrow routes between several adapters per token; it cannot be merged"),
    UnsupportedFeature("kasa_config", bool, "KaSA rewrites the base's singular values and puts a diagonal between "
                       "A and B"),
    UnsupportedFeature("monteclora_config", bool, "MonteCLoRA samples its factors, so the delta is not one fixed B·A"),
)
CONFIG_CHECKS = ("config.peft_type", "config.rank", "config.alpha", "config.target_modules", "config.features")
WEIGHT_CHECKS = ("weights.names", "weights.pairs", "weights.dtype", "weights.finite", "weights.modules",
                 "weights.shapes", "weights.rank", "weights.targets")
# Every check validate_adapter reports, in its order (the hub shows them in this order).
ADAPTER_CHECKS = ("files.required", "files.pickle", "files.unexpected", "files.size", "config.json", *CONFIG_CHECKS,
                  "config.base_model", "weights.header", *WEIGHT_CHECKS, *CARD_CHECKS, "card.base_model")


def validate_adapter(
    folder: Path,
    *,
    base_models: BaseModels,
    chosen_base: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ValidationReport:
    """Check a PEFT LoRA adapter folder against the hub's base models (name -> module shape manifest)."""
    folder = Path(folder)
    checks = Checks()
    stats: dict[str, Any] = {}
    usable = _check_adapter_files(checks, folder, scan_folder(folder), max_file_bytes)
    stats["file_bytes"] = (folder / ADAPTER_WEIGHTS).stat().st_size if ADAPTER_WEIGHTS in usable else None

    config = None
    if ADAPTER_CONFIG in usable:
        _, config = checks.attempt("config.json", lambda: _load_json_object(folder / ADAPTER_CONFIG),
                                   "is a JSON object", file=ADAPTER_CONFIG)
    else:
        checks.skip(["config.json"], f"{ADAPTER_CONFIG} is missing or too large", file=ADAPTER_CONFIG)
    lora = _check_config(checks, config, stats)

    base = _check_base_model(checks, config, base_models, chosen_base)
    stats["base_model"] = base
    manifest = base_models[base] if base is not None else None

    if ADAPTER_WEIGHTS in usable:
        parsed, header = checks.attempt("weights.header", lambda: read_header(folder / ADAPTER_WEIGHTS),
                                        lambda value: f"valid safetensors header with {len(value.tensors)} tensors",
                                        file=ADAPTER_WEIGHTS)
    else:
        parsed, header = False, None
        checks.skip(["weights.header"], f"{ADAPTER_WEIGHTS} is missing or too large", file=ADAPTER_WEIGHTS)
    if parsed and header is not None:
        _check_weights(checks, folder / ADAPTER_WEIGHTS, header, lora, manifest, stats)
    else:
        checks.skip(WEIGHT_CHECKS, f"{ADAPTER_WEIGHTS} could not be read", file=ADAPTER_WEIGHTS)

    card = check_card(checks, folder, usable, stats)
    declared = config.get("base_model_name_or_path") if config is not None else None
    expected_base = base or (declared if isinstance(declared, str) else None)
    if card is None or expected_base is None:
        checks.skip(["card.base_model"], "there is no card or no base model to compare", file=CARD)
    else:
        checks.attempt("card.base_model", lambda: _card_agrees(card, expected_base),
                       lambda named: f"card names base_model {named}" if named else "card names no base_model", file=CARD)
    return ValidationReport(kind="adapter", checks=checks.items, stats=stats)


def _card_agrees(card: Card, expected_base: str) -> str:
    named = card_base_models(card)
    if named and expected_base not in named:
        raise EngineInputError(f"card names {', '.join(named)} but the adapter is for {expected_base}",
                               file=CARD, field="base_model", code="base_model")
    return ", ".join(named)


def _check_adapter_files(checks: Checks, folder: Path, listing: FolderListing, max_file_bytes: int) -> set[str]:
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if name not in listing.files]
    checks.add("files.required", not missing,
               f"missing {' and '.join(missing)}; a LoRA upload is what PEFT's model.save_pretrained(dir, "
               "safe_serialization=True) writes" if missing else f"{ADAPTER_CONFIG} and {ADAPTER_WEIGHTS} are present")
    # A pickle under any name is a pickle: by its suffix, or by its first bytes whatever it is called.
    named = [name for name in listing.files if name.lower().endswith(PICKLE_SUFFIXES)]
    sniffed = {name: identify(read_head(folder / name)) for name in listing.files if name not in named}
    disguised = {name: found for name, found in sniffed.items() if found is not None and found.pickle}
    pickles = [*named, *disguised]
    checks.problems("files.pickle", [
        f"{name} is {disguised[name].name + ' despite its name' if name in disguised else 'a pickle file'}, which "
        f"can run code when loaded, so the hub never opens it; convert it to safetensors with "
        f"model.save_pretrained(dir, safe_serialization=True) or safetensors.torch.save_file"
        f"(torch.load('{name}', weights_only=True), '{ADAPTER_WEIGHTS}')" for name in pickles
    ], "no pickle files")
    unexpected = [f"{name} is {what}" for name, what in listing.others.items()]
    unexpected += [f"{name} is not part of a LoRA upload" for name in listing.files
                   if name not in ADAPTER_FILES and name not in pickles]
    checks.problems("files.unexpected", [f"{text}; expected only {', '.join(ADAPTER_FILES)}" for text in unexpected],
                    "no unexpected files")
    return check_file_sizes(checks, listing, max_file_bytes)


def _load_json_object(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise EngineInputError(f"is {size} bytes; a config is at most {MAX_CONFIG_BYTES}", file=path.name, code="too_large")
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise EngineInputError(f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                               file=path.name, code="json") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, too deep, or an integer past Python's digit limit
        raise EngineInputError(f"is not valid JSON ({str(exc)[:120]})", file=path.name, code="json") from None
    if not isinstance(data, dict):
        raise EngineInputError(f"must be a JSON object, got {type(data).__name__}", file=path.name, code="json")
    return data


@dataclass(frozen=True)
class LoraSettings:
    """What the config says, as far as it checked out (None where a check failed)."""

    rank: int | None
    scale: float | None  # for modules the patterns do not name
    targets: list[str] | str | None
    config: Mapping[str, Any] = field(default_factory=dict)  # for per-module ranks and alphas (lora.module_*)

    def rank_of(self, module: str) -> int | None:
        return module_rank(self.config, module) if self.rank is not None else None

    def scale_of(self, module: str, rank: int) -> float | None:
        return module_scale(self.config, module, rank) if self.scale is not None else None


def _check_config(checks: Checks, config: dict[str, Any] | None, stats: dict[str, Any]) -> LoraSettings:
    if config is None:
        checks.skip(CONFIG_CHECKS, f"{ADAPTER_CONFIG} is unusable", file=ADAPTER_CONFIG)
        return LoraSettings(None, None, None)

    def expect(key: str, ok: Callable[[Any], bool], expected: str) -> Any:
        value = config.get(key)
        if not ok(value):
            raise EngineInputError(f"is {quote(value)}; expected {expected}", file=ADAPTER_CONFIG, field=key, code="config")
        return value

    checks.attempt("config.peft_type", lambda: expect("peft_type", lambda v: v == "LORA", '"LORA" (other PEFT methods '
                   "are not stackable)"), "peft_type is LORA", file=ADAPTER_CONFIG)
    _, rank = checks.attempt("config.rank", lambda: expect("r", lambda v: _is_int(v) and 0 < v <= MAX_RANK,
                                                               f"a positive integer up to {MAX_RANK}"),
                             lambda v: f"r = {v}", file=ADAPTER_CONFIG)
    _, alpha = checks.attempt("config.alpha", lambda: expect("lora_alpha", lambda v: _is_number(v) and v > 0,
                                                             "a positive number"),
                              lambda v: f"lora_alpha = {v}", file=ADAPTER_CONFIG)
    _, targets = checks.attempt("config.target_modules", lambda: expect(
        "target_modules", lambda v: (isinstance(v, str) and v != "") or (
            isinstance(v, list) and v and all(isinstance(item, str) and item for item in v)),
        "a non-empty list of module names or one string"), lambda v: f"target_modules = {quote(v)}", file=ADAPTER_CONFIG)
    used = [f"{feature.key} = {quote(config[feature.key])}: {feature.reason}"
            for feature in UNSUPPORTED_FEATURES if feature.key in config and feature.is_used(config[feature.key])]
    pattern_problems = _pattern_problems(config)
    used += pattern_problems
    checks.problems("config.features", used, "uses only features the hub can stack", file=ADAPTER_CONFIG)

    use_rslora = bool(config.get("use_rslora"))
    scale = None
    if rank is not None and alpha is not None:
        scale = alpha / math.sqrt(rank) if use_rslora else alpha / rank
    stats.update(rank=rank, alpha=alpha, scale=scale, use_rslora=use_rslora,
                 target_modules=sorted(targets) if isinstance(targets, list) else targets)  # PEFT saves a set
    if pattern_problems:
        return LoraSettings(rank=rank, scale=None, targets=targets)  # per-module scales are unknown
    return LoraSettings(rank=rank, scale=scale, targets=targets, config=config)


def _pattern_problems(config: Mapping[str, Any]) -> list[str]:
    """rank_pattern and alpha_pattern, as PEFT reads them: {module pattern: rank or alpha}."""
    problems = []
    for key, valid, expected in (("rank_pattern", lambda v: _is_int(v) and 0 < v <= MAX_RANK,
                                  f"a positive integer rank up to {MAX_RANK}"),
                                 ("alpha_pattern", lambda v: _is_number(v) and v > 0, "a positive number")):
        patterns = config.get(key) or {}
        if not isinstance(patterns, dict):
            problems.append(f"{key} = {quote(patterns)}: expected an object of module pattern to {expected}")
            continue
        problems += [f"{key}[{quote(name)}] = {quote(value)}: expected {expected}" for name, value in patterns.items()
                     if not valid(value)]
        for name in patterns:
            try:
                pattern_value({name: 0}, "", None, field=key)
            except EngineInputError:
                problems.append(f"{key}: {quote(name)} is not a valid module pattern (a regular expression)")
    return problems


def _check_base_model(checks: Checks, config: dict[str, Any] | None, base_models: BaseModels,
                      chosen_base: str | None) -> str | None:
    known = f"the hub has {summarize(sorted(base_models), 10)}" if base_models else "the hub has no base models yet"
    declared = config.get("base_model_name_or_path") if config is not None else None
    if chosen_base is None and config is None:
        checks.skip(["config.base_model"], f"{ADAPTER_CONFIG} is unusable and no base model was chosen", file=ADAPTER_CONFIG)
        return None

    def resolve() -> str:
        if chosen_base is not None:
            if chosen_base not in base_models:
                raise EngineInputError(f"the chosen base model {chosen_base!r} is not on the hub; {known}", code="base_model")
            if isinstance(declared, str) and declared in base_models and declared != chosen_base:
                raise EngineInputError(f"is {declared!r} but the upload chose {chosen_base!r}; they must agree",
                                       file=ADAPTER_CONFIG, field="base_model_name_or_path", code="base_model")
            return chosen_base
        if not isinstance(declared, str) or declared not in base_models:
            raise EngineInputError(f"is {quote(declared)}, which is not a base model on the hub; {known} "
                                   "(or choose the base model when uploading)",
                                   file=ADAPTER_CONFIG, field="base_model_name_or_path", code="base_model")
        return declared

    _, base = checks.attempt("config.base_model", resolve, lambda name: f"base model {name}", file=ADAPTER_CONFIG)
    return base


@dataclass
class _Module:
    """A target module's factors as named in the file."""

    a: TensorInfo | None = None
    b: TensorInfo | None = None


def _check_weights(checks: Checks, path: Path, header: SafetensorsHeader, lora: LoraSettings,
                   manifest: Mapping[str, Mapping[str, int]] | None, stats: dict[str, Any]) -> None:
    file = ADAPTER_WEIGHTS
    modules: dict[str, _Module] = {}
    bad_names = []
    for name, info in header.tensors.items():
        match = ADAPTER_TENSOR_RE.fullmatch(name)
        if match is None:
            bad_names.append(f"{name} is not a LoRA factor; expected base_model.model.<module>.lora_A.weight or .lora_B.weight")
            continue
        setattr(modules.setdefault(match["module"], _Module()), match["factor"].lower(), info)
    checks.problems("weights.names", bad_names, "every tensor is a PEFT lora_A/lora_B factor", file=file)
    modules = dict(sorted(modules.items()))
    unpaired = [f"{module} has lora_{have}.weight but no lora_{lack}.weight"
                for module, parts in modules.items() if parts.a is None or parts.b is None
                for have, lack in [("A", "B") if parts.a is not None else ("B", "A")]]
    if not modules:
        unpaired.append("the file holds no lora_A/lora_B factors")
    checks.problems("weights.pairs", unpaired, f"{len(modules)} modules, each with lora_A and lora_B", file=file)
    factors = [info for parts in modules.values() for info in (parts.a, parts.b) if info is not None]
    checks.problems("weights.dtype", [f"{info.name} is {info.dtype}; expected a float type ({', '.join(sorted(FLOAT_DTYPES))})"
                                      for info in factors if info.dtype not in FLOAT_DTYPES],
                    "every factor is a float tensor", file=file)
    nonfinite = _check_finite(checks, path, factors)
    stats.update(tensor_count=len(header.tensors), modules=len(modules),
                 trainable_parameters=sum(info.numel for info in factors),
                 dtypes=sorted({info.dtype for info in factors}))

    if manifest is None:
        checks.skip(["weights.modules", "weights.shapes"], "the base model is unknown", file=file)
        misfits = set(modules)
    else:
        misfits = _check_shapes(checks, modules, manifest)
    if lora.rank is None:
        checks.skip(["weights.rank"], "the config's r is unusable", file=file)
        misfits = set(modules)
    else:
        off_rank = {module: rank for module, rank in _ranks(modules) if rank != lora.rank_of(module)}
        checks.problems("weights.rank", [f"{module} has rank {rank}; {ADAPTER_CONFIG} says r = {lora.rank_of(module)}"
                                         for module, rank in off_rank.items()],
                        f"every factor has the rank {ADAPTER_CONFIG} gives its module"
                        + (f" (r = {lora.rank})" if not lora.config.get("rank_pattern") else ""), file=file)
        misfits |= set(off_rank)
    _check_targets(checks, modules, lora.targets)
    stats["delta_norms"] = {
        module: _delta_norm(path, parts.a, parts.b, lora.scale_of(module, parts.a.shape[0]))
        for module, parts in modules.items()
        if lora.scale is not None and module not in misfits and parts.a is not None and parts.b is not None
        and not {parts.a.name, parts.b.name} & nonfinite and {parts.a.dtype, parts.b.dtype} <= FLOAT_DTYPES
    }


def _ranks(modules: dict[str, _Module]) -> Iterable[tuple[str, int]]:
    """(module, rank) for each 2-D factor: the rows of lora_A, the columns of lora_B."""
    for module, parts in modules.items():
        if parts.a is not None and len(parts.a.shape) == 2:
            yield module, parts.a.shape[0]
        if parts.b is not None and len(parts.b.shape) == 2:
            yield module, parts.b.shape[1]


def _check_shapes(checks: Checks, modules: dict[str, _Module], manifest: Mapping[str, Mapping[str, int]]) -> set[str]:
    """The weights.modules and weights.shapes checks; returns the modules that failed either."""
    missing = [module for module in modules if module not in manifest]
    checks.problems("weights.modules", [f"{module} is not a module of the base model (it has e.g. "
                                        f"{', '.join(list(manifest)[:3])})" for module in missing],
                    "every factor targets a linear module of the base model", file=ADAPTER_WEIGHTS)
    wrong: dict[str, list[str]] = {}
    for module, parts in modules.items():
        if module not in manifest:
            continue
        features, problems = manifest[module], wrong.setdefault(module, [])
        if parts.a is not None and (len(parts.a.shape) != 2 or parts.a.shape[1] != features["in"]):
            problems.append(f"{parts.a.name} is {list(parts.a.shape)}; expected [r, {features['in']}] (r × in_features)")
        if parts.b is not None and (len(parts.b.shape) != 2 or parts.b.shape[0] != features["out"]):
            problems.append(f"{parts.b.name} is {list(parts.b.shape)}; expected [{features['out']}, r] (out_features × r)")
        if not problems and parts.a is not None and parts.b is not None and parts.a.shape[0] != parts.b.shape[1]:
            problems.append(f"{module}: lora_A has rank {parts.a.shape[0]} but lora_B has rank {parts.b.shape[1]}")
    checks.problems("weights.shapes", [problem for problems in wrong.values() for problem in problems],
                    "lora_A is r × in and lora_B is out × r for every module", file=ADAPTER_WEIGHTS)
    return set(missing) | {module for module, problems in wrong.items() if problems}


def _check_finite(checks: Checks, path: Path, factors: list[TensorInfo]) -> set[str]:
    """The weights.finite check, reading each float factor in bounded chunks; returns the names of bad ones.

    Values are converted to float32 as the hub computes with them, so F64 values past float32's range count as infinite.
    """
    bad: dict[str, str] = {}
    for info in factors:
        if info.dtype not in FLOAT_DTYPES:
            continue
        itemsize, nan, inf = DTYPE_SIZES[info.dtype], 0, 0
        for first in range(0, info.numel, FINITE_CHUNK):
            count = min(FINITE_CHUNK, info.numel - first)
            start = info.start + first * itemsize
            with np.errstate(over="ignore"):
                chunk = load_tensor_f32(path, TensorInfo(info.name, info.dtype, (count,), start, start + count * itemsize))
            nan, inf = nan + int(np.isnan(chunk).sum()), inf + int(np.isinf(chunk).sum())
        if nan or inf:
            widened = " once converted to float32, as the hub computes" if info.dtype == "F64" else ""
            bad[info.name] = f"{info.name} has {nan} NaN and {inf} infinite values{widened}; expected finite numbers"
    checks.problems("weights.finite", list(bad.values()), "no NaN or infinite values", file=ADAPTER_WEIGHTS)
    return set(bad)


def _delta_norm(path: Path, a_info: TensorInfo, b_info: TensorInfo, scale: float) -> float:
    """||scale · B A||_F without the out × in product: ||B A||_F² = trace(Aᵀ Bᵀ B A) = trace((Bᵀ B)(A Aᵀ)), r × r Grams.

    Only modules that passed every check get here, so both factors are finite in float32 and the float64 sums cannot
    overflow: (3.4e38)² · in · r² is far below 1e308.
    """
    a = load_tensor_f32(path, a_info).astype(np.float64)
    b = load_tensor_f32(path, b_info).astype(np.float64)
    return abs(scale) * math.sqrt(max(float(np.sum((b.T @ b) * (a @ a.T))), 0.0))


def _check_targets(checks: Checks, modules: dict[str, _Module], targets: list[str] | str | None) -> None:
    """Tensors for modules the config does not target would be ignored by PEFT but merged by the hub."""
    if targets is None:
        checks.skip(["weights.targets"], "the config's target_modules is unusable", file=ADAPTER_WEIGHTS)
    elif isinstance(targets, str) and targets != "all-linear":
        checks.skip(["weights.targets"], "target_modules is a regular expression, which the hub does not evaluate",
                    file=ADAPTER_WEIGHTS)
    else:
        untargeted = [] if targets == "all-linear" else [
            f"{module} has factors but target_modules {quote(targets)} does not name it"
            for module in modules if not any(module == key or module.endswith("." + key) for key in targets)
        ]
        checks.problems("weights.targets", untargeted, "every adapted module is in target_modules", file=ADAPTER_WEIGHTS)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """An int or float that a float can hold (so alpha / r cannot overflow)."""
    if not (_is_int(value) or isinstance(value, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


# --- the worker's entry point ----------------------------------------------------------------------------------------


def validate_upload(
    source: Path,
    kind: str,
    base_models: BaseModels | None = None,
    *,
    chosen_base: str | None = None,
    limits: ArchiveLimits = ArchiveLimits(),  # noqa: B008 - frozen, so sharing the default is safe
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    work_dir: Path | None = None,
) -> ValidationReport:
    """Validate an upload folder or archive of `kind` ("adapter" or "dataset"); bad input never raises.

    An archive is unpacked into a temporary folder under `work_dir` (the system's by default) and
    removed afterwards. Any EngineInputError becomes a failed check, so a worker always gets a report.
    """
    if kind not in UPLOAD_KINDS:
        raise ValueError(f"kind must be one of {UPLOAD_KINDS}, got {kind!r}")

    def validate(folder: Path) -> ValidationReport:
        if kind == "adapter":
            return validate_adapter(folder, base_models=base_models or {}, chosen_base=chosen_base,
                                    max_file_bytes=max_file_bytes)
        return validate_dataset(folder, max_file_bytes=max_file_bytes)

    source = Path(source)
    try:
        if source.is_dir():
            return validate(source)
        if not is_archive(source):
            raise EngineInputError("expected a folder or an archive (.zip, .tar.gz, .tgz, .tar)", file=source.name,
                                   code="upload_format")
        with tempfile.TemporaryDirectory(prefix="nomoat-upload-", dir=work_dir) as tmp:
            folder = Path(tmp) / "upload"
            try:
                extract_upload(source, folder, limits=limits)
            except EngineInputError as exc:
                return ValidationReport(kind, [Check("archive", False, str(exc), file=exc.file, field=exc.field)])
            return validate(folder)
    except EngineInputError as exc:
        return ValidationReport(kind, [Check("upload", False, str(exc), file=exc.file, field=exc.field)])

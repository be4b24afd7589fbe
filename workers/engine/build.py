"""Stack builds: a recipe and local folders in, one artifact folder and its manifest out.

`build_stack` refuses bad inputs before the first weight is read (adapter headers against the
base model's modules), runs the output's builder in a staging folder beside the target, checks
the base weights' sha256 against the recipe, and renames the folder into place: the artifact
appears whole or not at all. Builders stream: the merged model is written tensor by tensor from
memory-mapped base weights, so peak memory follows the largest tensor, not the model, and every
file is hashed while it is written, never read back; the inputs are hashed on a helper thread
while the build runs. The same recipe and inputs give
byte-identical files on the same machine (nothing time- or order-dependent is written).

Output kinds are looked up in `outputs.OUTPUT_KINDS`; a builder is `builder(ctx: BuildContext) ->
dict` (extra manifest entries) and may reuse `write_merged_weights` and `write_model_files`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from workers.engine import ENGINE_VERSION
from workers.engine.background import OrderedBackground
from workers.engine.errors import EngineInputError
from workers.engine.fsutil import atomic_writer, sha256_file, staging_prefix
from workers.engine.lora import AdapterInfo, check_compatible, read_adapter
from workers.engine.recipe import Recipe
from workers.engine.safetensors_io import FLOAT_DTYPES, SafetensorsStreamWriter, TensorInfo, TensorSpec, read_header
from workers.engine.shapes import module_shapes, weight_files
from workers.engine.stacking import (
    Factors,
    StackFactors,
    adapter_rank,
    module_delta,
    module_factors,
    require_finite,
    tensor_from_bytes,
)

Progress = Callable[[float, str], None]

MANIFEST_NAME = "nomoat-manifest.json"
# recipe dtype -> (torch dtype, safetensors dtype, config.json name)
DTYPES: dict[str, tuple[torch.dtype, str, str]] = {
    "bf16": (torch.bfloat16, "BF16", "bfloat16"),
    "fp16": (torch.float16, "F16", "float16"),
    "fp32": (torch.float32, "F32", "float32"),
}
# Files of the base folder a merged model needs besides its weights and config (and its licence).
MODEL_FILES = (
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
    "LICENSE", "LICENSE.md", "LICENSE.txt", "NOTICE",
)
# The builder's share of the progress bar; the rest is verifying the inputs and hashing the outputs.
BUILD_END = 0.9


def _no_progress(fraction: float, message: str) -> None:
    """The progress callback when the caller gives none."""


def span_progress(progress: Progress, start: float, end: float) -> Progress:
    """Map a step's own 0..1 progress onto [start, end] of the whole build."""
    return lambda fraction, message: progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: the recipe, checked inputs, the folder to write into, a progress callback.

    A builder that hashes the files it writes records their sha256 here (`record`), so they are
    not read back.
    """

    recipe: Recipe
    base_dir: Path
    base_files: tuple[Path, ...]
    adapters: tuple[AdapterInfo, ...]  # in recipe order
    staging: Path
    progress: Progress  # 0..1 of this builder's own work
    stack: StackFactors
    written: dict[str, str] = field(default_factory=dict)  # path relative to staging -> sha256

    @property
    def weights(self) -> list[float]:
        return [adapter.weight for adapter in self.recipe.adapters]

    def modules(self) -> list[str]:
        """Every module some adapter of the stack targets, sorted."""
        return sorted({module for adapter in self.adapters for module in adapter.modules})

    def factors(self, module: str) -> list[Factors | None]:
        return self.stack.module(module)

    def record(self, path: Path, sha256: str) -> None:
        """Remember the sha256 of a file written under the staging folder (others are ignored)."""
        if path.is_relative_to(self.staging):
            self.written[path.relative_to(self.staging).as_posix()] = sha256


def build_stack(
    recipe: Recipe,
    *,
    base_dir: Path | str,
    adapter_dirs: Mapping[str, Path | str],
    out_dir: Path | str,
    progress: Progress | None = None,
    verify_inputs: bool = True,
) -> dict[str, Any]:
    """Build `recipe` into `out_dir` and return its manifest (also written as nomoat-manifest.json).

    `base_dir` is the base model's HF folder; `adapter_dirs` maps each adapter ref of the recipe to
    its PEFT folder. Bad or incompatible inputs raise EngineInputError before anything is written.
    The inputs' sha256 (base weight files; each adapter's adapter_model.safetensors) are computed
    on a helper thread while the build runs and checked against the recipe at its end; a mismatch
    discards the build. If `out_dir` already holds this
    recipe's artifact, its manifest is returned (a retried task does not build twice); any other
    existing `out_dir` is a FileExistsError. `verify_inputs=False` skips hashing the input weights
    (a third of a merged build's CPU time, though on its own thread) for callers whose files come
    straight from a content-addressed store that already checked them; the manifest then says
    "verified": false.
    """
    out_dir, base_dir = Path(out_dir), Path(base_dir)
    progress = progress or _no_progress
    existing = read_manifest(out_dir)
    if existing is not None and existing.get("recipe_hash") == recipe.hash:
        return existing
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists and holds no artifact of recipe {recipe.hash}")

    missing = [adapter.ref for adapter in recipe.adapters if adapter.ref not in adapter_dirs]
    if missing:
        raise EngineInputError(f"no folder was given for adapter {missing[0]}", field="adapters", code="missing")
    adapters = tuple(read_adapter(adapter_dirs[adapter.ref], ref=adapter.ref) for adapter in recipe.adapters)
    base_files = tuple(weight_files(base_dir))
    names = sorted(path.name for path in base_files)
    if names != sorted(recipe.base.sha256):
        raise EngineInputError(
            f"the base folder has weight files {names} but the recipe names {sorted(recipe.base.sha256)}",
            field="base.sha256", code="hash_mismatch",
        )
    check_compatible(adapters, module_shapes(base_files))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(out_dir), dir=out_dir.parent))
    # sha256 and torch kernels release the GIL: the inputs are hashed beside the build, not after it.
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-inputs")
    try:
        input_digests = {
            path: hasher.submit(sha256_file, path)
            for path in (*base_files, *(adapter.weights_path for adapter in adapters))
        } if verify_inputs else None
        ctx = BuildContext(
            recipe, base_dir, base_files, adapters, staging, span_progress(progress, 0.0, BUILD_END), StackFactors(adapters),
        )
        report = recipe.output.kind.load_builder()(ctx)
        finishing = span_progress(progress, BUILD_END, 1.0)
        manifest = {
            "engine_version": ENGINE_VERSION,
            "recipe": recipe.content_dict(),
            "recipe_hash": recipe.hash,
            "sources": verify_sources(ctx, input_digests, span_progress(finishing, 0.0, 0.5)),
            "files": hash_files(staging, ctx.written, span_progress(finishing, 0.5, 1.0)),
            "report": report,
        }
        write_json(staging / MANIFEST_NAME, manifest)
        _fsync_dir(staging)
        try:
            os.rename(staging, out_dir)
        except OSError:
            # Another worker finished the same recipe first: its artifact is as good as ours.
            existing = read_manifest(out_dir)
            if existing is None or existing.get("recipe_hash") != recipe.hash:
                raise
            shutil.rmtree(staging, ignore_errors=True)
            return existing
        _fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        hasher.shutdown(wait=True, cancel_futures=True)
    progress(1.0, "done")
    return manifest


def read_manifest(out_dir: Path | str) -> dict[str, Any] | None:
    """The manifest of a finished artifact folder, or None if there is none."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST_NAME).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def verify_sources(ctx: BuildContext, digests: Mapping[Path, Future[str]] | None, progress: Progress) -> dict[str, Any]:
    """sha256 of every input file: the base weights must be the recipe's files, and each adapter's
    adapter_model.safetensors its sha256. `digests` are the weights' hashes, computed while the build
    ran; None means unverified: the weights' hashes are the recipe's, taken on trust."""

    def checked(path: Path, expected: str, field: str) -> str:
        if digests is None:
            return expected
        actual = digests[path].result()
        if actual != expected:
            raise EngineInputError(
                f"the file's sha256 is {actual} but the recipe expects {expected}", file=path.name, field=field, code="hash_mismatch"
            )
        return actual

    base: dict[str, str] = {}
    for index, path in enumerate(ctx.base_files):
        progress(index / len(ctx.base_files), f"verifying {path.name}")
        field_name = f"base.sha256.{path.name}"
        base[path.name] = checked(path, ctx.recipe.base.sha256[path.name], field_name)
    adapters = []  # in recipe order, by content: no hub's refs in the built files
    for index, (adapter, ref) in enumerate(zip(ctx.adapters, ctx.recipe.adapters, strict=True)):
        config = adapter.dir / "adapter_config.json"
        adapters.append({
            config.name: sha256_file(config),
            adapter.weights_path.name: checked(adapter.weights_path, ref.sha256, f"adapters[{index}].sha256"),
        })
    return {"verified": digests is not None, "base": base, "adapters": adapters}


def hash_files(folder: Path, known: Mapping[str, str], progress: Progress) -> list[dict[str, Any]]:
    """[{path, size, sha256}] of every file under `folder` in path order, the manifest excluded;
    files whose sha256 is `known` (hashed while written) are not read again."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    entries = []
    for index, path in enumerate(paths):
        progress(index / len(paths), f"hashing {path.name}")
        name = path.relative_to(folder).as_posix()
        entries.append({"path": name, "size": path.stat().st_size, "sha256": known.get(name) or sha256_file(path)})
    return entries


def write_json(path: Path, data: Any) -> None:
    """Stable JSON (sorted keys, fixed indent) written atomically: the same data gives the same bytes."""
    with atomic_writer(path) as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tensor_bytes(tensor: torch.Tensor, dtype: torch.dtype, name: str) -> np.ndarray:
    """The little-endian bytes of output tensor `name` cast to `dtype` (round to nearest even), as a uint8 array.

    A value that is not finite after the cast (a huge weight, or past fp16's 65504) fails the build, naming the tensor.
    """
    cast = tensor.to(dtype)
    require_finite(cast, name, where=f" once written as {str(dtype).removeprefix('torch.')}")
    return cast.contiguous().reshape(-1).view(torch.uint8).numpy()


# ---------------------------------------------------------------------------------------------
# merged: the base model with every combined delta added, in the chosen dtype


def build_merged(ctx: BuildContext) -> dict[str, Any]:
    """The `merged` output: a plain HF model folder that `AutoModelForCausalLM.from_pretrained` loads."""
    params = ctx.recipe.output.params
    report = write_merged_weights(ctx, ctx.staging, dtype=params["dtype"], max_shard_bytes=params["max_shard_bytes"])
    write_model_files(ctx, ctx.staging, dtype=params["dtype"])
    return report


def _shard(specs: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Greedy shards in tensor order, as transformers cuts them: a tensor larger than the limit stands alone."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def _map_tensor(handle: BinaryIO, info: TensorInfo) -> np.ndarray:
    """One tensor's bytes, memory-mapped copy-on-write (writable for torch, never written back).

    A map per tensor, released with the array, keeps resident memory at the tensors in flight
    rather than every page of the model read so far.
    """
    if info.end == info.start:
        return np.zeros(0, dtype=np.uint8)
    start = info.start - info.start % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(handle.fileno(), info.end - start, offset=start, access=mmap.ACCESS_COPY)
    return np.frombuffer(mapping, dtype=np.uint8, count=info.end - info.start, offset=info.start - start)


def write_merged_weights(ctx: BuildContext, out_dir: Path, *, dtype: str, max_shard_bytes: int) -> dict[str, Any]:
    """Write W0 + ΔW for every base tensor (memory-mapped, one at a time) as safetensors shards.

    Float tensors are cast to `dtype`; others are copied. One shard is `model.safetensors`; more
    are `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json`. Each shard is
    hashed as it is written (`ctx.record`). Returns {"energy_kept": {module: fraction}} for the adapted modules.
    """
    torch_dtype, st_dtype, _ = DTYPES[dtype]
    sources: dict[str, tuple[Path, TensorInfo]] = {}
    for path in ctx.base_files:
        header = read_header(path)
        for info in sorted(header.tensors.values(), key=lambda info: info.start):
            sources[info.name] = (path, info)
    specs = [TensorSpec(name, st_dtype if info.dtype in FLOAT_DTYPES else info.dtype, info.shape) for name, (_, info) in sources.items()]
    shards = _shard(specs, max_shard_bytes)
    names = ["model.safetensors"] if len(shards) == 1 else [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    adapted = {f"{module}.weight": module for module in ctx.modules()}
    energy: dict[str, float] = {}
    total = sum(spec.nbytes for spec in specs)
    done = 0
    with contextlib.ExitStack() as stack:
        handles = {path: stack.enter_context(open(path, "rb")) for path in ctx.base_files}
        for name, shard in zip(names, shards, strict=True):
            digest = hashlib.sha256()
            # Writing and hashing run on a helper thread while this one merges the next tensor; leaving
            # the block waits for it (before the shard is renamed into place).
            with (SafetensorsStreamWriter(out_dir / name, shard, metadata={"format": "pt"}, digest=digest) as writer,
                  OrderedBackground() as background):
                for spec in shard:
                    path, info = sources[spec.name]
                    raw = _map_tensor(handles[path], info)
                    module = adapted.get(spec.name)
                    if module is None and spec.dtype == info.dtype:
                        background.submit(writer.write, spec.name, raw)
                    else:
                        weight = tensor_from_bytes(raw, info.dtype, info.shape)
                        if module is not None:
                            weight, energy[module] = module_delta(ctx.recipe.method, module, ctx.factors(module), ctx.weights,
                                                                  base=weight)
                        background.submit(writer.write, spec.name, _tensor_bytes(weight, torch_dtype, spec.name))
                    done += spec.nbytes
                    ctx.progress(done / max(total, 1), spec.name)
            ctx.record(out_dir / name, digest.hexdigest())
    if len(shards) > 1:
        weight_map = {spec.name: name for name, shard in zip(names, shards, strict=True) for spec in shard}
        write_json(out_dir / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    return {"energy_kept": dict(sorted(energy.items()))}


def write_model_files(ctx: BuildContext, out_dir: Path, *, dtype: str) -> None:
    """config.json with the new dtype, and the base's tokenizer, generation config and licence, copied."""
    config = json.loads((ctx.base_dir / "config.json").read_text())
    name = DTYPES[dtype][2]
    config["torch_dtype"] = name
    if "dtype" in config:  # transformers >= 4.56 writes `dtype`; older versions read `torch_dtype`
        config["dtype"] = name
    write_json(out_dir / "config.json", config)
    for file in MODEL_FILES:
        if (ctx.base_dir / file).is_file():
            digest = hashlib.sha256()
            with open(ctx.base_dir / file, "rb") as source, atomic_writer(out_dir / file) as target:
                while chunk := source.read(1 << 20):
                    target.write(chunk)
                    digest.update(chunk)
            ctx.record(out_dir / file, digest.hexdigest())


# ---------------------------------------------------------------------------------------------
# adapter: one PEFT LoRA adapter holding the whole stack


def build_adapter(ctx: BuildContext) -> dict[str, Any]:
    """The `adapter` output: one PEFT LoRA folder that `PeftModel.from_pretrained` loads.

    Each module gets the factors of `stacking.module_factors` at scale 1: exact `cat` factors
    (rank Σ r_i) for linear and cat, else the SVD of the combined delta truncated to the output's
    (or svd's) rank. Ranks that differ from the largest go into rank_pattern / alpha_pattern, with
    alpha = rank so that every scale is exactly 1.
    """
    method, params = ctx.recipe.method, ctx.recipe.output.params
    torch_dtype, st_dtype, _ = DTYPES[params["dtype"]]
    modules = ctx.modules()
    ranks: dict[str, int] = {}
    specs: list[TensorSpec] = []
    for module in modules:
        loras = [adapter.modules[module] for adapter in ctx.adapters if module in adapter.modules]
        out_features, in_features = loras[0].shape
        ranks[module] = adapter_rank(method, [lora.rank for lora in loras], loras[0].shape, params["rank"])
        specs.append(TensorSpec(f"base_model.model.{module}.lora_A.weight", st_dtype, (ranks[module], in_features)))
        specs.append(TensorSpec(f"base_model.model.{module}.lora_B.weight", st_dtype, (out_features, ranks[module])))
    energy: dict[str, float] = {}
    digest = hashlib.sha256()
    path = ctx.staging / "adapter_model.safetensors"
    with SafetensorsStreamWriter(path, specs, metadata={"format": "pt"}, digest=digest) as writer:
        for index, module in enumerate(modules):
            a, b, energy[module] = module_factors(method, module, ctx.factors(module), ctx.weights, params["rank"])
            for factor, tensor in (("A", a), ("B", b)):
                name = f"base_model.model.{module}.lora_{factor}.weight"
                writer.write(name, _tensor_bytes(tensor, torch_dtype, name))
            ctx.progress((index + 1) / len(modules), module)
    ctx.record(path, digest.hexdigest())
    rank = max(ranks.values())
    patterns = {module: r for module, r in ranks.items() if r != rank}
    write_json(ctx.staging / "adapter_config.json", {
        "peft_type": "LORA",
        "task_type": ctx.adapters[0].config.get("task_type") or "CAUSAL_LM",
        "base_model_name_or_path": ctx.recipe.base.name,
        "r": rank,
        "lora_alpha": rank,
        "rank_pattern": patterns,
        "alpha_pattern": patterns,
        "target_modules": modules,
        "use_rslora": False,
        "use_dora": False,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "inference_mode": True,
    })
    return {"energy_kept": energy}

"""PEFT LoRA adapter → GGUF LoRA adapter, applied by llama.cpp at run time (`llama_adapter_lora_init`).

Matches llama.cpp's convert_lora_to_gguf.py: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and per adapted weight `<gguf name>.lora_a` (PEFT's A, rank × in) and
`<gguf name>.lora_b` (PEFT's B, out × rank). The Q/K row permutation of the base export is
applied to B, the factor whose rows are the weight's output rows, so (B·A) permutes like W.

llama.cpp scales every pair by alpha / rank (rank read from the tensor) times the run-time scale.
PEFT's scale is lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA, and may vary per module
(rank_pattern, alpha_pattern). The written alpha makes the common case exact (rsLoRA:
alpha·sqrt(r)); any module whose PEFT scale still differs has the ratio folded into its B.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from workers.engine.errors import EngineInputError
from workers.engine.fsutil import atomic_path
from workers.engine.gguf_export import GGUF_ARCH, gguf_tensor_name, load_hparams, read_json, to_llama_layout
from workers.engine.lora import module_scale
from workers.engine.safetensors_io import load_tensor_f32, read_header
from workers.engine.shapes import weight_files

ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
DTYPES = {"f32": np.float32, "f16": np.float16}


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    config = read_json(adapter_dir / "adapter_config.json")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise EngineInputError("only LoRA adapters export to GGUF", file="adapter_config.json", field="peft_type")
    if config.get("use_dora"):
        raise EngineInputError("DoRA has no llama.cpp runtime equivalent", file="adapter_config.json", field="use_dora")
    if config.get("modules_to_save"):
        raise EngineInputError(
            "adapters with modules_to_save carry full weights llama.cpp cannot apply",
            file="adapter_config.json", field="modules_to_save",
        )
    try:
        config["r"], config["lora_alpha"] = int(config["r"]), float(config["lora_alpha"])
    except (KeyError, TypeError, ValueError):
        raise EngineInputError("r and lora_alpha must be numbers", file="adapter_config.json") from None
    if config["r"] <= 0 or config["lora_alpha"] <= 0:
        # llama.cpp reads alpha 0 as "no alpha/r scaling", not as a zero adapter
        raise EngineInputError("r and lora_alpha must be positive", file="adapter_config.json", field="lora_alpha")
    return config


def lora_pairs(adapter_dir: Path) -> dict[str, dict[str, Any]]:
    """Group the adapter's tensors by module: {module: {"A": TensorInfo, "B": TensorInfo}}."""
    path = adapter_dir / ADAPTER_WEIGHTS
    if not path.is_file():
        raise EngineInputError("file is missing", file=ADAPTER_WEIGHTS, code="missing")
    pairs: dict[str, dict[str, Any]] = {}
    for name, info in read_header(path).tensors.items():
        if name.endswith(".base_layer.weight"):
            continue  # PEFT's copy of a base weight (saved for tied embeddings), as llama.cpp's converter skips it
        match = re.fullmatch(r"(.+)\.lora_([AB])\.weight", name.removeprefix(PEFT_PREFIX))
        if match is None:
            raise EngineInputError(
                "only lora_A / lora_B weights can be exported (no embeddings, DoRA or full modules)",
                file=ADAPTER_WEIGHTS, field=name, code="tensor",
            )
        pairs.setdefault(match.group(1), {})[match.group(2)] = info
    for module, pair in pairs.items():
        if set(pair) != {"A", "B"} or len(pair["A"].shape) != 2 or len(pair["B"].shape) != 2:
            raise EngineInputError("needs a 2-D lora_A and lora_B", file=ADAPTER_WEIGHTS, field=module, code="tensor")
        if pair["A"].shape[0] != pair["B"].shape[1]:
            raise EngineInputError("lora_A and lora_B ranks differ", file=ADAPTER_WEIGHTS, field=module, code="shape")
    return dict(sorted(pairs.items()))


def export_gguf_lora(
    adapter_dir: Path | str,
    base_model_dir: Path | str,
    out_path: Path | str,
    *,
    dtype: str = "f32",
) -> dict[str, Any]:
    """Write the PEFT adapter in `adapter_dir` (for the HF base in `base_model_dir`) as a GGUF LoRA.

    f32 by default, like llama.cpp's converter: adapters are small and their factors are applied
    unquantized. Returns path, size, the alpha written, rank(s), module count and seconds.
    """
    started = time.perf_counter()
    if dtype not in DTYPES:
        raise EngineInputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", field="dtype")
    adapter_dir, base_model_dir = Path(adapter_dir), Path(base_model_dir)
    hp = load_hparams(base_model_dir)
    config = read_adapter_config(adapter_dir)
    pairs = lora_pairs(adapter_dir)
    if not pairs:
        raise EngineInputError("the adapter has no LoRA weights", file=ADAPTER_WEIGHTS, code="empty")
    base_shapes = {
        name: info.shape for path in weight_files(base_model_dir) for name, info in read_header(path).tensors.items()
    }
    written_alpha = config["lora_alpha"] * (math.sqrt(config["r"]) if config.get("use_rslora") else 1.0)

    targets: list[tuple[str, str, float]] = []  # (module, gguf base name, factor folded into B)
    for module, pair in pairs.items():
        weight = f"{module}.weight"
        if len(base_shapes.get(weight, ())) != 2 or (weight == "lm_head.weight" and hp.tied_embeddings):
            raise EngineInputError(
                "the adapter targets no 2-D weight the base model has as its own tensor",
                file=ADAPTER_WEIGHTS, field=module, code="target",
            )
        out_features, in_features = base_shapes[weight]
        if pair["B"].shape[0] != out_features or pair["A"].shape[1] != in_features:
            raise EngineInputError(
                f"B·A is {pair['B'].shape[0]}x{pair['A'].shape[1]} but the base weight is {out_features}x{in_features}",
                file=ADAPTER_WEIGHTS, field=module, code="shape",
            )
        gguf_name = gguf_tensor_name(weight, hp.n_layer)
        if gguf_name is None or gguf_name == "token_embd.weight":
            raise EngineInputError("this module cannot carry a LoRA in GGUF", file=ADAPTER_WEIGHTS, field=module)
        rank = pair["A"].shape[0]
        factor = module_scale(config, module, rank) / (written_alpha / rank)
        targets.append((module, gguf_name, 1.0 if math.isclose(factor, 1.0, rel_tol=1e-9) else factor))

    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[GGUF_ARCH])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, written_alpha)
    np_dtype = DTYPES[dtype]
    for module, gguf_name, _ in targets:
        for side in ("A", "B"):
            info = pairs[module][side]
            writer.add_tensor_info(
                f"{gguf_name}.lora_{side.lower()}", info.shape, np.dtype(np_dtype),
                info.numel * np.dtype(np_dtype).itemsize,
            )
    weights = adapter_dir / ADAPTER_WEIGHTS
    with atomic_path(out_path) as tmp:
        try:
            writer.write_header_to_file(tmp)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for module, gguf_name, factor in targets:
                lora_a = load_tensor_f32(weights, pairs[module]["A"])
                lora_b = load_tensor_f32(weights, pairs[module]["B"]) * np.float32(factor)
                writer.write_tensor_data(np.ascontiguousarray(lora_a, dtype=np_dtype))
                writer.write_tensor_data(np.ascontiguousarray(to_llama_layout(gguf_name, lora_b, hp), dtype=np_dtype))
        finally:
            writer.close()

    return {
        "path": str(out_path),
        "size_bytes": Path(out_path).stat().st_size,
        "alpha": written_alpha,
        "ranks": sorted({pairs[m]["A"].shape[0] for m, _, _ in targets}),
        "n_modules": len(targets),
        "rescaled_modules": sorted(m for m, _, f in targets if f != 1.0),
        "seconds": round(time.perf_counter() - started, 3),
    }

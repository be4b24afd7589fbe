"""The module shape manifest of a base model: every linear module an adapter may target."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workers.engine.safetensors_io import read_header

# 2-D weights that are lookups, not matmuls: LoRA on them is not something the hub stacks.
NON_LINEAR_WEIGHTS = ("embed_tokens",)


def module_shapes(weight_files: Iterable[Path | str]) -> dict[str, dict[str, int]]:
    """Map module name (e.g. `model.layers.0.self_attn.q_proj`) to its `in`/`out` features."""
    manifest: dict[str, dict[str, int]] = {}
    for path in weight_files:
        for name, info in read_header(path).tensors.items():
            if not name.endswith(".weight") or len(info.shape) != 2:
                continue
            module = name[: -len(".weight")]
            if module.rsplit(".", 1)[-1] in NON_LINEAR_WEIGHTS:
                continue
            out_features, in_features = info.shape
            manifest[module] = {"in": in_features, "out": out_features}
    return dict(sorted(manifest.items()))


def weight_files(model_dir: Path | str) -> list[Path]:
    """The safetensors files of an HF model folder, sharded or not, in a stable order."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weight files")
    return files

"""Quantize a GGUF with llama.cpp's own quantizer (`llama_model_quantize`), atomically.

llama.cpp picks each tensor's type from the requested mix (Q4_K_M keeps some tensors at Q6_K,
norms at F32, ...). K-quants pack rows in super-blocks of 256 values; a tensor whose row length
is not a multiple of 256 (every tensor of the tiny test model, whose rows are 64 or 128 long, and
SmolLM2's 576-wide projections) falls back per tensor to a legacy type of similar size
(Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0). That is llama.cpp's behaviour, not an error, so the
result reports the tensor types actually written and the real bits per weight.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from workers.engine.errors import EngineInputError
from workers.engine.fsutil import atomic_path
from workers.engine.llama_runtime import llama_backend

# Name → llama_ftype constant in llama_cpp; the types the hub offers.
QUANT_TYPES: dict[str, str] = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q5_K_S": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
}


def tensor_stats(path: Path | str) -> dict[str, Any]:
    """Parameter count, tensor-data bytes and the count of tensors per storage type of a GGUF."""
    import gguf

    reader = gguf.GGUFReader(path)
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    n_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    types = Counter(t.tensor_type.name for t in reader.tensors)
    return {"n_params": n_params, "tensor_bytes": n_bytes, "tensor_types": dict(sorted(types.items()))}


def quantize_gguf(src: Path | str, dst: Path | str, qtype: str, *, n_threads: int = 0) -> dict[str, Any]:
    """Quantize the f32/f16/bf16 GGUF `src` to `qtype` at `dst`.

    Returns size_bytes (the file), bits_per_weight (tensor data bits / parameters, as llama.cpp
    reports it), tensor_types (what each tensor became) and seconds. n_threads=0 lets llama.cpp
    use every core.
    """
    started = time.perf_counter()
    name = qtype.upper()
    if name not in QUANT_TYPES:
        raise EngineInputError(f"quantization type {qtype!r} is not one of {', '.join(QUANT_TYPES)}", field="qtype")
    if not Path(src).is_file():
        raise EngineInputError("GGUF file not found", file=str(src), code="missing")
    lib = llama_backend()
    params = lib.llama_model_quantize_default_params()
    params.ftype = getattr(lib, QUANT_TYPES[name])
    params.nthread = n_threads
    with atomic_path(dst) as tmp:
        if lib.llama_model_quantize(str(src).encode(), str(tmp).encode(), params) != 0:
            raise EngineInputError(f"llama.cpp could not quantize this file to {name}", file=Path(src).name,
                                   code="quantize")
    stats = tensor_stats(dst)
    return {
        "path": str(dst),
        "qtype": name,
        "size_bytes": Path(dst).stat().st_size,
        "bits_per_weight": round(8 * stats["tensor_bytes"] / stats["n_params"], 3),
        "n_params": stats["n_params"],
        "tensor_types": stats["tensor_types"],
        "seconds": round(time.perf_counter() - started, 3),
    }

"""GGUF stack outputs: one quantized (or f16) file, or the llama.cpp runtime bundle; each behind its gate.

No GGUF is ever published unverified:
- every file starts as an f16 export of the merged model, whose greedy continuations (32 tokens
  per prompt) and logits must match transformers on the same folder (`verify_f16_export`);
- a quantized file must load and predict like the f16 one on the hub's held-out text
  (`verify_quantized`), and its perplexity next to f16's is recorded;
- the `runtime` bundle (base GGUF + adapter GGUFs + scales) must give the same greedy tokens and
  logits as the merged-then-exported f16 model (`verify_runtime_stack`).
A failed gate raises VerificationError, which fails the build with the gate's figures.
The kinds are declared in `outputs`; this module is imported only when one of them is built.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from workers.engine.errors import VerificationError
from workers.engine.outputs import DEFAULT_MAX_SHARD_BYTES, QUANT_OUTPUTS, RUNTIME_MANIFEST

VERIFY_PROMPTS = ("The quick brown fox", "def fibonacci(n):", "Question: What is the capital of France?\nAnswer:")


def held_out_text(limit_chars: int = 6000) -> str:
    """Text no model here was tuned on: the evaluation corpus (pydoc topics outside tokenizer training)."""
    from workers.engine.evals.corpus import pydoc_documents

    return "\n\n".join(doc.text for doc in pydoc_documents())[:limit_chars]


def f16_gate_passed(report: dict[str, Any]) -> bool:
    """The f16 gate, tolerating greedy paths that part at a tie within the runtimes' measured noise.

    When llama.cpp's logits differ from transformers' by up to d (measured teacher-forced over the
    whole sequence, and bounded by the tolerance), two candidates closer than 2d can swap: a path
    that parts there is float noise, not a wrong export. A gap wider than that is a real mismatch.
    """
    return all(
        p["tokens_match"] and p["rel_logit_diff"] <= report["logits_rel_tol"]
        and (p["n_matched"] == report["n_tokens"] or p["reference_gap_at_mismatch"] < 2 * p["max_abs_logit_diff"])
        for p in report["prompts"]
    )


def _merged_f16(ctx, workdir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Merge into an fp32 HF folder, export it to f16 GGUF, and pass the f16 gate."""
    from workers.engine.build import span_progress, write_merged_weights, write_model_files
    from workers.engine.gguf_export import export_gguf
    from workers.engine.llama_runtime import verify_f16_export

    merged = workdir / "merged"
    merged.mkdir()
    merging = dataclasses.replace(ctx, progress=span_progress(ctx.progress, 0.0, 0.4))  # same `written` record
    report = write_merged_weights(merging, merged, dtype="fp32", max_shard_bytes=DEFAULT_MAX_SHARD_BYTES)
    write_model_files(ctx, merged, dtype="fp32")
    ctx.progress(0.4, "exporting to GGUF f16")
    f16 = workdir / "model-f16.gguf"
    report["export"] = export_gguf(merged, f16, dtype="f16", name=ctx.recipe.base.name)
    ctx.progress(0.6, "verifying the f16 export against transformers")
    gate = verify_f16_export(merged, f16, VERIFY_PROMPTS, n_tokens=32)
    report["f16_gate"] = gate
    if not f16_gate_passed(gate):
        raise VerificationError("the f16 GGUF does not reproduce transformers' greedy tokens and logits",
                                details=gate)
    return merged, f16, report


def build_gguf(ctx) -> dict[str, Any]:
    """`gguf-f16` or `gguf-<quant>`: one file, model-<type>.gguf."""
    from workers.engine.llama_runtime import verify_quantized
    from workers.engine.quantize import quantize_gguf

    qtype = QUANT_OUTPUTS.get(ctx.recipe.output.type)
    with tempfile.TemporaryDirectory(prefix=f"{ctx.staging.name}.gguf-", dir=ctx.staging.parent) as tmp:
        _, f16, report = _merged_f16(ctx, Path(tmp))
        if qtype is None:
            f16.rename(ctx.staging / "model-f16.gguf")
            return report
        ctx.progress(0.7, f"quantizing to {qtype}")
        target = ctx.staging / f"model-{qtype.lower()}.gguf"
        report["quantize"] = quantize_gguf(f16, target, qtype)
        ctx.progress(0.85, "checking the quantized file on held-out text")
        gate = verify_quantized(target, f16, held_out_text())
        report["quant_gate"] = gate
        if not gate["ok"]:
            raise VerificationError(f"the {qtype} file does not predict like its f16 source "
                                    f"(perplexity ×{gate['ppl_ratio']:.2f})", details=gate)
    return report


def build_runtime(ctx) -> dict[str, Any]:
    """`runtime`: the base as f16 GGUF, each adapter as a GGUF LoRA, and runtime.json with the scales."""
    from workers.engine.gguf_adapter import export_gguf_lora
    from workers.engine.gguf_export import export_gguf
    from workers.engine.llama_runtime import Adapter, verify_runtime_stack

    with tempfile.TemporaryDirectory(prefix=f"{ctx.staging.name}.runtime-", dir=ctx.staging.parent) as tmp:
        _, merged_f16, report = _merged_f16(ctx, Path(tmp))
        base_gguf = ctx.staging / "base-f16.gguf"
        report["base_export"] = export_gguf(ctx.base_dir, base_gguf, dtype="f16", name=ctx.recipe.base.name)
        entries = []
        for index, (info, ref) in enumerate(zip(ctx.adapters, ctx.recipe.adapters, strict=True)):
            name = f"adapter-{index}-{ref.sha256[:12]}.gguf"  # by content: the same file names on every hub
            export_gguf_lora(info.dir, ctx.base_dir, ctx.staging / name)
            entries.append({"adapter_sha256": ref.sha256, "file": name, "scale": ref.weight})
        ctx.progress(0.8, "verifying run-time stacking against the merged model")
        gate = verify_runtime_stack(base_gguf, [Adapter(ctx.staging / e["file"], e["scale"]) for e in entries],
                                    merged_f16, VERIFY_PROMPTS, n_tokens=32)
        report["runtime_gate"] = gate
        if not gate["ok"]:
            raise VerificationError("base + adapters at run time do not match the merged model", details=gate)
    (ctx.staging / RUNTIME_MANIFEST).write_text(json.dumps({
        "base": "base-f16.gguf",
        "adapters": entries,
        "llama_cpp": "llama-cli -m base-f16.gguf " + " ".join(f"--lora-scaled {e['file']} {e['scale']}" for e in entries),
        "llama_cpp_python": "llama_adapter_lora_init(model, file) then llama_set_adapters_lora with each scale",
    }, indent=2))
    return report

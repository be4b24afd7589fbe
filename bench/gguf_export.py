"""Benchmark: SmolLM2-135M-Instruct → GGUF f16 → Q8_0 / Q4_K_M, with llama.cpp as the judge.

Measures: export time and size (f16); quantize time, size and bits per weight; perplexity on
held-out text (a fixed chunk of CPython's bundled pydoc topics, scored by llama.cpp in
non-overlapping 512-token windows) and its change against f16, next to llama.cpp's own published
deltas; greedy generation speed on 2 threads (best of --repeats). Usage:

    .venv/bin/python bench/gguf_export.py [--tokens 4096] [--gen 128] [--repeats 5]

Reference deltas: llama.cpp's quantize tool (tools/quantize/quantize.cpp, QUANT_OPTIONS) lists
"+0.0026 ppl" for Q8_0 and "+0.1754 ppl" for Q4_K_M at Llama-3-8B, whose f16 wikitext-2
perplexity its perplexity README gives as 6.2331: +0.04% and +2.8%.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from workers.engine.smollm2 import smollm2_dir  # noqa: E402 (after the path is set)

CACHE = REPO_ROOT / ".cache"
BASE_DIR = smollm2_dir(CACHE / "models")
OUT_DIR = CACHE / "bench" / "gguf"
QTYPES = ("Q8_0", "Q4_K_M")
LLAMA3_8B_F16_PPL = 6.2331
PUBLISHED_PPL_DELTA = {"Q8_0": 0.0026, "Q4_K_M": 0.1754}  # absolute, Llama-3-8B, llama.cpp quantize.cpp
GEN_PROMPT = "<|im_start|>user\nWrite a short story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n"


def held_out_text(n_chars: int) -> str:
    """A fixed chunk of pydoc's topic help: sorted topics, concatenated, from the middle of the alphabet."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    start = len(text) // 2
    return text[start : start + n_chars]


def generation_speed(path: Path, n_tokens: int, repeats: int, threads: int) -> float:
    """Best-of-repeats decode tokens/s: time(greedy 1 + n tokens) - time(greedy 1), so prefill cancels.

    Best, not median: on a shared machine other processes only ever slow a run down (llama.cpp's
    worker threads spin-wait, so 2 threads on a busy 2-core box can drop 10x), like timeit's min.
    """
    from workers.engine.llama_runtime import LlamaRuntime

    rates = []
    with LlamaRuntime(path, n_threads=threads) as runtime:
        ids = runtime.tokenize(GEN_PROMPT, add_special=False)  # the chat markup carries its own specials
        for _ in range(repeats):
            t0 = time.perf_counter()
            runtime.greedy(ids, 1)
            t1 = time.perf_counter()
            runtime.greedy(ids, n_tokens + 1)
            t2 = time.perf_counter()
            rates.append(n_tokens / ((t2 - t1) - (t1 - t0)))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=4096, help="held-out tokens to score (about)")
    parser.add_argument("--gen", type=int, default=128, help="tokens to generate per speed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from workers.engine.gguf_export import export_gguf
    from workers.engine.llama_runtime import verify_quantized
    from workers.engine.quantize import quantize_gguf
    from workers.engine.smollm2 import convert_smollm2

    convert_smollm2(CACHE / "models")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    text = held_out_text(args.tokens * 4)  # ~4 characters per token on English/Python prose
    results: dict[str, dict] = {}

    info = export_gguf(BASE_DIR, OUT_DIR / "smollm2-f16.gguf", dtype="f16")
    results["F16"] = {"seconds": info["seconds"], "size_bytes": info["size_bytes"], "bits_per_weight": 16.0}
    for qtype in QTYPES:
        out = quantize_gguf(OUT_DIR / "smollm2-f16.gguf", OUT_DIR / f"smollm2-{qtype}.gguf", qtype, n_threads=args.threads)
        report = verify_quantized(out["path"], info["path"], text, window=512, n_threads=args.threads)
        published = PUBLISHED_PPL_DELTA[qtype]
        results[qtype] = {
            **{k: out[k] for k in ("seconds", "size_bytes", "bits_per_weight", "tensor_types")},
            **{k: report[k] for k in ("ok", "ppl", "reference_ppl", "ppl_ratio", "top1_agreement", "n_tokens")},
            "published_delta_pct": round(100 * published / LLAMA3_8B_F16_PPL, 3),
        }
        results["F16"]["ppl"] = report["reference_ppl"]
    for name in ("F16", *QTYPES):
        path = OUT_DIR / f"smollm2-{'f16' if name == 'F16' else name}.gguf"
        results[name]["gen_tokens_per_s"] = generation_speed(path, args.gen, args.repeats, args.threads)

    print(f"SmolLM2-135M-Instruct, {args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"{'type':7} {'time s':>7} {'size MB':>8} {'bpw':>6} {'ppl':>8} {'Δppl %':>7} {'ref Δ %':>7} {'top1':>6} {'gen t/s':>8}")
    for name, row in results.items():
        delta = 100 * (row["ppl_ratio"] - 1) if "ppl_ratio" in row else 0.0
        print(
            f"{name:7} {row['seconds']:7.2f} {row['size_bytes'] / 1e6:8.1f} {row['bits_per_weight']:6.2f} "
            f"{row['ppl']:8.3f} {delta:7.2f} {row.get('published_delta_pct', 0.0):7.2f} "
            f"{row.get('top1_agreement', 1.0):6.3f} {row['gen_tokens_per_s']:8.1f}"
        )
    for qtype in QTYPES:
        print(f"{qtype} tensor types: {results[qtype]['tensor_types']}")
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: tokens/second of the general-perplexity suite on SmolLM2-135M-Instruct.

Runs the suite (`workers.engine.evals`, fixed pydoc corpus, 1024-token rolling windows) with:

- the hub's transformers backend (windows sorted by length, batched up to --batch-tokens tokens);
- a plain transformers loop in the same process, one unbatched forward per window (the reference;
  its bits per byte must equal the backend's);
- llama-cpp-python on f16 and Q4_K_M GGUFs exported from the same folder (skipped, with a note,
  where llama_cpp or the exporter is missing).

Tokens are the documents' tokens (each predicted once). Usage:

    .venv/bin/python bench/evals_throughput.py [--docs 16] [--batch-tokens 2048] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CACHE = Path(os.environ.get("NOMOAT_MODEL_CACHE", REPO_ROOT / ".cache" / "models"))
OUT_DIR = REPO_ROOT / ".cache" / "bench" / "evals"

if TYPE_CHECKING:
    from workers.engine.evals import Backend, PerplexitySuite


def plain_loop(model_dir: Path, suite: PerplexitySuite, threads: int) -> tuple[float, int, float]:
    """The reference: the same windows, one forward each, log_softmax, sum. Returns (seconds, tokens, bpb)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.engine.evals import model_input, rolling_windows

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    max_length = min(suite.max_length, model.config.max_position_embeddings)
    started = time.perf_counter()
    total_ll, total_tokens = 0.0, 0
    with torch.inference_mode():
        for doc in suite.documents:
            ids = tokenizer(doc.text, add_special_tokens=False)["input_ids"]
            total_tokens += len(ids)
            for context, continuation in rolling_windows(
                ids, prefix_token=tokenizer.bos_token_id, max_length=max_length
            ):
                tokens, start = model_input(context, continuation, max_length)
                logprobs = torch.log_softmax(model(torch.tensor([tokens])).logits[0, start:].double(), dim=-1)
                total_ll += float(logprobs[torch.arange(len(continuation)), torch.tensor(continuation)].sum())
    seconds = time.perf_counter() - started
    nbytes = sum(len(doc.text.encode()) for doc in suite.documents)
    return seconds, total_tokens, -total_ll / nbytes / math.log(2)


def timed_suite(backend: Backend, suite: PerplexitySuite) -> tuple[float, int, float]:
    from workers.engine.evals import run_suite

    result = run_suite(suite, backend)
    tokens = sum(record["tokens"] for record in result["records"])
    return result["timing"]["seconds"], tokens, result["metrics"]["bits_per_byte"]["value"]


def gguf_files(model_dir: Path, threads: int) -> dict[str, Path] | str:
    """f16 and Q4_K_M GGUFs of the folder (made once, then reused), or why they cannot be made."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama_cpp is not installed"
    if importlib.util.find_spec("workers.engine.gguf_export") is None:
        return "workers.engine.gguf_export is not available"
    from workers.engine.gguf_export import export_gguf
    from workers.engine.quantize import quantize_gguf

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    f16, q4 = OUT_DIR / "smollm2-f16.gguf", OUT_DIR / "smollm2-Q4_K_M.gguf"
    if not f16.exists():
        export_gguf(model_dir, f16, dtype="f16")
    if not q4.exists():
        quantize_gguf(f16, q4, "Q4_K_M", n_threads=threads)
    return {"gguf f16": f16, "gguf Q4_K_M": q4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=16, help="first N documents of the suite (all 16 by default)")
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import torch

    from workers.engine.evals import GGUFBackend, TransformersBackend, general_perplexity_suite, perplexity_suite
    from workers.engine.smollm2 import convert_smollm2

    torch.set_num_threads(args.threads)
    model_dir = convert_smollm2(CACHE / "models")
    full = general_perplexity_suite()
    suite = perplexity_suite(full.id, full.documents[: args.docs], max_length=full.max_length)
    print(f"suite {full.id} {full.version}: {len(suite.documents)} docs, windows of {suite.max_length} tokens")
    print(f"threads {args.threads}, torch {torch.__version__}, batch_tokens {args.batch_tokens}")

    rows = [
        ("transformers loop (reference)", plain_loop(model_dir, suite, args.threads)),
        ("hub TransformersBackend", timed_suite(TransformersBackend(model_dir, batch_tokens=args.batch_tokens), suite)),
    ]
    files = gguf_files(model_dir, args.threads)
    if isinstance(files, str):
        print(f"note: GGUF runs skipped: {files}")
    else:
        for name, path in files.items():
            rows.append(
                (name, timed_suite(GGUFBackend(path, max_length=suite.max_length, n_threads=args.threads), suite))
            )

    print(f"{'backend':32} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'bits/byte':>9}")
    for name, (seconds, tokens, bpb) in rows:
        print(f"{name:32} {tokens:7d} {seconds:8.2f} {tokens / seconds:9.1f} {bpb:9.4f}")


if __name__ == "__main__":
    main()

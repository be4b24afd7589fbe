"""Benchmark: LoRA training throughput and peak memory, nomoat's engine against a plain transformers Trainer + PEFT.

Both train the same LoRA (rank 8, alpha 16, q/k/v/o projections) on the same tokenized rows (unit conversions,
loss on the answers only) with the same settings: AdamW, linear schedule, batch size, steps, gradient clipping at
1.0, seed, thread count. Each run is its own subprocess, so its peak RSS (ru_maxrss) is its own; time is measured
inside the process around the training loop only (model loading excluded), and tokens/s counts the tokens of the
rows each step trained on (padding excluded). Runs are interleaved and repeated; medians are printed.

    .venv/bin/python bench/training.py [--model smollm2|tiny] [--steps 20] [--batch-size 8] [--threads 2] [--repeats 3]

A few seconds' smoke: `.venv/bin/python bench/training.py --model tiny --steps 5 --repeats 1`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CACHE = REPO_ROOT / ".cache"
MODES = ("ours", "trainer")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def base_dir(model: str) -> tuple[Path, str]:
    if model == "tiny":
        from workers.engine.tiny import TINY_BASE_NAME, build_tiny_base

        folder = CACHE / "bench" / "tiny-base"
        if not (folder / "config.json").exists():
            build_tiny_base(folder)
        return folder, TINY_BASE_NAME
    from workers.engine.smollm2 import SMOLLM2_NAME, convert_smollm2

    return convert_smollm2(CACHE / "models"), SMOLLM2_NAME


def rows_file(folder: Path) -> Path:
    path = folder / "train.jsonl"
    units = [("km", "m", 1000), ("kg", "g", 1000), ("m", "cm", 100), ("hours", "minutes", 60), ("litres", "ml", 1000)]
    rows = [{"prompt": f"Convert {n} {a} to {b}:", "response": f" {n * f} {b}"} for n in range(1, 41)
            for a, b, f in units]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_one(mode: str, model: str, steps: int, batch_size: int, threads: int) -> dict:
    """One training run in this process: seconds of the loop, tokens trained on, peak RSS."""
    import torch

    from workers.engine.training import TrainingSpec, tokenize_rows, train_adapter

    folder, name = base_dir(model)
    torch.set_num_threads(threads)
    spec = TrainingSpec.from_dict({"lora": {"rank": 8, "alpha": 16, "target_modules": TARGETS}, "steps": steps,
                                   "learning_rate": 2e-4, "batch_size": batch_size, "max_seq_len": 64, "seed": 0})
    with tempfile.TemporaryDirectory() as scratch:
        data = rows_file(Path(scratch))
        if mode == "ours":
            # result.seconds: from the model being ready to the last step (loading and saving excluded)
            result = train_adapter(folder, [data], Path(scratch) / "out", spec, base_model_name=name, threads=threads)
            seconds, tokens = result.seconds, result.tokens
        else:
            seconds, tokens = _trainer(folder, data, spec, threads, tokenize_rows)
    return {"seconds": seconds, "tokens": tokens, "tokens_per_second": tokens / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _trainer(folder: Path, data: Path, spec, threads: int, tokenize_rows) -> tuple[float, int]:
    """The reference: transformers.Trainer with a PEFT model, on the same examples (the engine's tokenization)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = tokenize_rows(tokenizer, [data], max_seq_len=spec.max_seq_len).items
    torch.manual_seed(spec.seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                           LoraConfig(r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.target_modules),
                                      lora_dropout=0.0, task_type="CAUSAL_LM"))
    pad = tokenizer.pad_token_id or 0
    counted = {"tokens": 0}

    def collate(batch: list) -> dict:
        width = max(len(e.input_ids) for e in batch)
        counted["tokens"] += sum(len(e.input_ids) for e in batch)
        return {"input_ids": torch.tensor([list(e.input_ids) + [pad] * (width - len(e.input_ids)) for e in batch]),
                "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids))
                                                for e in batch]),
                "labels": torch.tensor([list(e.labels) + [-100] * (width - len(e.labels)) for e in batch])}

    class Clock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs) -> None:
            self.started = time.perf_counter()

        def on_train_end(self, *args, **kwargs) -> None:
            self.seconds = time.perf_counter() - self.started

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(output_dir=out, max_steps=spec.steps, per_device_train_batch_size=spec.batch_size,
                                      learning_rate=spec.learning_rate, lr_scheduler_type=spec.schedule,
                                      weight_decay=0.0, max_grad_norm=1.0, seed=spec.seed, logging_steps=10**9,
                                      save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                                      remove_unused_columns=False, disable_tqdm=True)
        Trainer(model=model, args=arguments, train_dataset=examples, data_collator=collate,
                callbacks=[clock]).train()
    return clock.seconds, counted["tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # a child process's single run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.model, args.steps, args.batch_size, args.threads)))
        return
    base_dir(args.model)  # convert or build once, before any timed run
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            child = subprocess.run([sys.executable, __file__, "--one", mode, "--model", args.model, "--steps",
                                    str(args.steps), "--batch-size", str(args.batch_size), "--threads",
                                    str(args.threads)], capture_output=True, text=True, check=True)
            results[mode].append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"{args.model}: {args.steps} steps, batch {args.batch_size}, {args.threads} threads, "
          f"median of {args.repeats}")
    medians = {mode: (statistics.median(r["tokens_per_second"] for r in runs),
                      statistics.median(r["peak_rss_mb"] for r in runs)) for mode, runs in results.items()}
    for mode, (rate, memory) in medians.items():
        print(f"  {mode:8s} {rate:10.1f} tokens/s   peak RSS {memory:8.1f} MB")
    (ours_rate, ours_memory), (trainer_rate, trainer_memory) = medians["ours"], medians["trainer"]
    print(f"  ratio ours/trainer: throughput {ours_rate / trainer_rate:.2f}x, peak RSS {ours_memory / trainer_memory:.2f}x")


if __name__ == "__main__":
    main()

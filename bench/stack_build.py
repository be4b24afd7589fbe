"""Benchmark: building a merged stack on SmolLM2-135M, our streaming builder against PEFT's path.

Three rank-16 adapters on all seven attention and MLP projections of SmolLM2-135M-Instruct are
stacked (linear, weights 0.7 / -0.4 / 1.3) and written as a bf16 model, three ways:

  ours       workers.engine.build.build_stack (streams; sha256 of every input and output byte)
  trusted    the same with verify_inputs=False: input weights not hashed (content-addressed store)
  peft       from_pretrained fp32, PeftModel + load_adapter, add_weighted_adapter("cat"),
             merge_and_unload, .to(bf16), save_pretrained, tokenizer.save_pretrained
  readwrite  the I/O floor: read every input file once, write as many bytes as our artifact
             holds, fsync

Each run is its own subprocess, so its peak RSS (VmHWM, which exec resets) is its own; time is
measured inside the process after imports, and the whole process (imports included) is timed as
well. Runs are interleaved and repeated; medians are printed. `--threads N` sets torch's thread
count in both contenders (on a small shared machine, OpenMP threads competing with other
processes for the cores can make every kernel several times slower). Usage:

    .venv/bin/python bench/stack_build.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from workers.engine.smollm2 import smollm2_dir  # noqa: E402 (after the path is set)

CACHE = REPO_ROOT / ".cache"
BASE_DIR = smollm2_dir(CACHE / "models")
ADAPTERS_DIR = CACHE / "bench" / "adapters"
OUT_DIR = CACHE / "bench" / "out"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
WEIGHTS = (0.7, -0.4, 1.3)
MODES = ("readwrite", "ours", "trusted", "peft")


def prepare() -> dict[str, Path]:
    """SmolLM2 as an HF folder and three rank-16 adapters on it, built once and cached."""
    from workers.engine.smollm2 import SMOLLM2_NAME, convert_smollm2
    from workers.engine.tiny import build_tiny_adapter

    convert_smollm2(CACHE / "models")
    adapters = {}
    for index, seed in enumerate((1, 2, 3)):
        folder = ADAPTERS_DIR / f"r16-{seed}"
        if not (folder / "adapter_model.safetensors").exists():
            build_tiny_adapter(BASE_DIR, folder, rank=16, alpha=32, target_modules=TARGETS, seed=seed, init_std=0.02, base_model_name=SMOLLM2_NAME)
        adapters[f"bench/r16-{index}@1"] = folder
    return adapters


def recipe_dict(adapters: dict[str, Path]) -> dict:
    from workers.engine.fsutil import sha256_file

    return {
        "base": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "sha256": {"model.safetensors": sha256_file(BASE_DIR / "model.safetensors")}},
        "adapters": [
            {"ref": ref, "sha256": sha256_file(folder / "adapter_model.safetensors"), "weight": weight}
            for (ref, folder), weight in zip(adapters.items(), WEIGHTS, strict=True)
        ],
        "method": "linear",
        "output": {"type": "merged", "dtype": "bf16"},
    }


# --- the three contenders, each run in a child process ------------------------------------------


def run_ours(job: dict) -> None:
    from workers.engine.build import build_stack
    from workers.engine.recipe import Recipe

    recipe = Recipe.from_dict(job["recipe"])
    build_stack(recipe, base_dir=BASE_DIR, adapter_dirs=job["adapters"], out_dir=job["out"], verify_inputs=job["verify"])


def run_peft(job: dict) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(BASE_DIR, dtype=torch.float32)
    names = [f"a{i}" for i in range(len(job["adapters"]))]
    model = PeftModel.from_pretrained(base, list(job["adapters"].values())[0], adapter_name=names[0])
    for name, folder in zip(names[1:], list(job["adapters"].values())[1:], strict=True):
        model.load_adapter(folder, adapter_name=name)
    model.add_weighted_adapter(names, list(WEIGHTS), "stack", combination_type="cat")
    model.set_adapter("stack")
    merged = model.merge_and_unload(adapter_names=["stack"]).to(torch.bfloat16)
    merged.save_pretrained(job["out"], safe_serialization=True)
    AutoTokenizer.from_pretrained(BASE_DIR).save_pretrained(job["out"])


def run_readwrite(job: dict) -> None:
    """Read every input once and write `bytes` bytes (taken from what was read), then fsync."""
    inputs = [p for p in BASE_DIR.iterdir() if p.is_file()]
    inputs += [p for folder in job["adapters"].values() for p in Path(folder).iterdir() if p.is_file()]
    os.makedirs(job["out"])
    remaining = job["bytes"]
    with open(Path(job["out"]) / "out.bin", "wb") as out:
        for path in inputs:
            with open(path, "rb") as handle:
                while chunk := handle.read(16 << 20):
                    if remaining > 0:
                        out.write(chunk[: min(remaining, len(chunk) // 2 + 1)])
                        remaining -= min(remaining, len(chunk) // 2 + 1)
        while remaining > 0:  # in case the inputs were smaller than the artifact
            out.write(bytes(min(remaining, 16 << 20)))
            remaining -= min(remaining, 16 << 20)
        out.flush()
        os.fsync(out.fileno())


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc: unlike ru_maxrss, exec resets it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(mode: str, job_json: str) -> None:
    job = json.loads(job_json)
    runner = {"ours": run_ours, "trusted": run_ours, "peft": run_peft, "readwrite": run_readwrite}[mode]
    job["verify"] = mode != "trusted"
    if mode != "readwrite":  # import the heavy libraries before the clock starts, for both contenders
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401

        import workers.engine.build  # noqa: F401

        if job["threads"]:
            torch.set_num_threads(job["threads"])
    rss_after_imports = memory_mb("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    runner(job)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({
        "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": memory_mb("VmHWM"), "rss_after_imports_mb": rss_after_imports,
    }))


# --- the driver ----------------------------------------------------------------------------------


def artifact_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(mode: str, job: dict) -> dict:
    shutil.rmtree(job["out"], ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, json.dumps(job)], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    result["output_bytes"] = artifact_bytes(Path(job["out"]))
    shutil.rmtree(job["out"], ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in ours and peft (0: torch's default)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    adapters = prepare()
    job = {
        "recipe": recipe_dict(adapters),
        "adapters": {ref: str(p) for ref, p in adapters.items()},
        "out": str(OUT_DIR),
        "threads": args.threads,
    }
    # one untimed build warms the page cache and tells the baseline how many bytes to write
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    run_ours({**job, "verify": True})
    job["bytes"] = artifact_bytes(OUT_DIR)
    shutil.rmtree(OUT_DIR)

    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            results[mode].append(measure(mode, job))

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in results[mode])

    print(f"SmolLM2-135M-Instruct + 3 x rank-16 LoRA (q,k,v,o,gate,up,down) -> bf16 merged; "
          f"median of {args.repeats}; {os.cpu_count()} CPUs; torch threads: {args.threads or 'default'}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<10} {'build s':>8} {'min s':>7} {'CPU s':>6} {'process s':>10} {'peak RSS MB':>12} "
          f"{'RSS after imports':>18} {'output MB':>10}")
    for mode in MODES:
        print(f"{mode:<10} {median(mode, 'seconds'):>8.2f} {min(r['seconds'] for r in results[mode]):>7.2f} "
              f"{median(mode, 'cpu_seconds'):>6.2f} {median(mode, 'process_seconds'):>10.2f} {median(mode, 'peak_rss_mb'):>12.0f} "
              f"{median(mode, 'rss_after_imports_mb'):>18.0f} {median(mode, 'output_bytes') / 1e6:>10.1f}")
    for key, label in (("seconds", "build time"), ("cpu_seconds", "CPU time")):
        for ours in ("ours", "trusted"):
            mine, peft, floor = (median(m, key) for m in (ours, "peft", "readwrite"))
            print(f"{label:<10} {ours:<8}: peft / {ours} {peft / mine:.2f}x (target >= 3x), "
                  f"{ours} / readwrite {mine / floor:.2f}x (target <= 2x)")
    print(f"peft / ours peak RSS:        {median('peft', 'peak_rss_mb') / median('ours', 'peak_rss_mb'):.2f}x")


if __name__ == "__main__":
    main()

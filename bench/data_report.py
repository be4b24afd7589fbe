"""Benchmark: the data report (`workers.engine.datareport`) on a generated dataset of --rows rows.

The dataset: instruction rows (train.jsonl, and test.jsonl with a tenth of the rows) of 20-60 words, with 1% exact
duplicates, 1% near duplicates (a word changed), 0.5% of test rows copied from train, and a few rows holding an
API key, an e-mail address or a phone number. With --tokenizer, rows are also counted in that tokenizer's tokens
(the hub passes each base model's tokenizer.json).

The baseline, measured in the same run on the same files: an exact-duplicate-only pass (every row read and
validated by `workers.engine.datasets`, its canonical fields digested), i.e. the cost every report pays before
any of its own work. Usage:

    .venv/bin/python bench/data_report.py [--rows 1000000] [--tokenizer path/to/tokenizer.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

VOCABULARY = ("the model data adapter stack train test value answer question number string list return import class "
         "method object module about which where when why how river city country paint write read code sql query "
         "table join select order group count sum average name email phone key token secret report")
WORDS = VOCABULARY.split()


def generate(folder: Path, rows: int, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    made: list[dict[str, str]] = []

    def fresh() -> dict[str, str]:
        words = rng.choices(WORDS, k=rng.randint(20, 60))
        cut = len(words) // 2
        return {"prompt": " ".join(words[:cut]) + "?", "response": " ".join(words[cut:]) + "."}

    with open(folder / "train.jsonl", "w") as train, open(folder / "test.jsonl", "w") as test:
        for i in range(rows):
            draw = rng.random()
            if made and draw < 0.01:
                row = rng.choice(made)
            elif made and draw < 0.02:
                original = rng.choice(made)
                words = original["prompt"].split()
                words[rng.randrange(len(words))] = rng.choice(WORDS)
                row = {"prompt": " ".join(words), "response": original["response"]}
            else:
                row = fresh()
                if i % 10007 == 0:
                    row["prompt"] += f" my key is sk-{rng.getrandbits(128):032x} mail me at a{i}@example.com"
            is_test = i % 10 == 9
            if is_test and made and rng.random() < 0.005:
                row = rng.choice(made)
            (test if is_test else train).write(json.dumps(row) + "\n")
            if len(made) < 10000:
                made.append(row)
    return {"train": ["train.jsonl"], "test": ["test.jsonl"]}


def exact_only(folder: Path, splits: dict[str, list[str]]) -> int:
    """The baseline: read and validate every row, digest its canonical fields, count repeats."""
    from workers.engine.datasets import canonical_fields, read_records, row_format

    seen: set[bytes] = set()
    duplicates = 0
    for files in splits.values():
        for name in files:
            for record in read_records(folder / name):
                fmt = None if record.error else row_format(record.value)[0]
                if fmt is None:
                    continue
                digest = hashlib.blake2b(json.dumps(canonical_fields(record.value, fmt), sort_keys=True).encode(),
                                         digest_size=8).digest()
                duplicates += digest in seen
                seen.add(digest)
    return duplicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer.json to count tokens with (max 2048)")
    args = parser.parse_args()

    from workers.engine.datareport import data_report, tokenizer_budget

    with tempfile.TemporaryDirectory(prefix="bench-data-report-") as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        splits = generate(folder, args.rows)
        size = sum((folder / n).stat().st_size for files in splits.values() for n in files)
        print(f"generated {args.rows:,} rows ({size / 1e6:.0f} MB) in {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        duplicates = exact_only(folder, splits)
        baseline = time.monotonic() - started
        print(f"baseline (exact duplicates only): {baseline:.1f} s, {args.rows / baseline:,.0f} rows/s, "
              f"{duplicates:,} duplicates")

        budgets = [tokenizer_budget("bench", args.tokenizer, 2048)] if args.tokenizer else []
        started, cpu = time.monotonic(), time.process_time()
        report = data_report(folder, splits, budgets=budgets)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"data report: {seconds:.1f} s ({cpu:.1f} s CPU), {args.rows / seconds:,.0f} rows/s, "
              f"{seconds / baseline:.1f}x the baseline, peak RSS {peak_mb:,.0f} MB")
        exact, near = report["duplicates"]["exact"], report["duplicates"]["near"]
        print(f"  exact duplicates {exact['rows']:,}, near duplicates {near['rows']:,}, "
              f"leaked test rows {sum(leak['rows'] for leak in report['leakage']):,}, "
              f"rows with secrets {report['sensitive']['rows']:,}")


if __name__ == "__main__":
    main()

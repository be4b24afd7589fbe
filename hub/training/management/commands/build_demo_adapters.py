"""Reproduce the shipped demo adapters: train each on its curated dataset with the hub's own training engine.

    .venv/bin/python manage.py build_demo_adapters [--only unit-conversions] [--threads 2] [--evaluate]

Each adapter is trained on SmolLM2-135M-Instruct from DEMO_ADAPTERS (hub/training/demo.py: rank, modules, steps,
seed), on the same rows the seeding publishes, one at a time, and written to hub/training/demo_adapters/<dataset>/
(adapter_config.json, adapter_model.safetensors, and the engine's card with every hyperparameter). manifest.json
records what made each one: the spec, the sha256 of the dataset files it was trained on and of the files written,
the losses and the library versions. The same spec, seed, thread count and machine give the same adapter bytes.

`--evaluate` (alone, or after training) scores what is in the folder the way the hub's evaluations will: each
adapter's task suite (its dataset's eval split, exact match) on the base and on the adapter, and every member's task
on the demo stack (the members merged at their weights), with the stacking scores; `manifest.json` keeps them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub.training.demo import (
    DEMO_ADAPTER_FILES,
    DEMO_ADAPTERS,
    DEMO_ADAPTERS_DIR,
    DEMO_OWNER,
    DEMO_STACK_MEMBERS,
    DEMO_TAG,
    demo_dataset_files,
    demo_dataset_ref,
)
from workers.engine.datasets import records_of, task_row
from workers.engine.evals import TransformersBackend, run_suite, stacking_summary, task_suite
from workers.engine.training import Progress, TrainingSpec, lineage_card, train_adapter

MANIFEST = "manifest.json"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Command(BaseCommand):
    help = "Train the shipped demo adapters on SmolLM2 with the hub's training engine (one at a time)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--only", action="append", choices=sorted(DEMO_ADAPTERS), help="train only these")
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--out", type=Path, default=DEMO_ADAPTERS_DIR)
        parser.add_argument("--evaluate", action="store_true", help="score base, adapters and the demo stack")
        parser.add_argument("--no-train", action="store_true", help="with --evaluate: score what is there")

    def handle(self, *args, only: list[str] | None, threads: int, out: Path, evaluate: bool, no_train: bool,
               **options) -> None:
        from workers.engine.smollm2 import convert_smollm2

        base_dir = convert_smollm2(settings.MODEL_CACHE_DIR)
        manifest_path = out / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if not no_train:
            for dataset in only or DEMO_ADAPTERS:
                manifest[dataset] = self.train(base_dir, dataset, out, threads)
                manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if evaluate:
            manifest["scores"] = self.evaluate(base_dir, out, threads)
            manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def train(self, base_dir: Path, dataset: str, out: Path, threads: int) -> dict:
        """Train one adapter into out/<dataset> and return its manifest entry."""
        from workers.engine.smollm2 import SMOLLM2_NAME

        spec = TrainingSpec.from_dict(DEMO_ADAPTERS[dataset])
        files = demo_dataset_files(dataset)
        ref = demo_dataset_ref(DEMO_OWNER, dataset)
        card = {**lineage_card(dataset=ref, license="cc0-1.0", eval_split="eval"),
                "tags": ["lora", "nomoat-trained", DEMO_TAG], "task": "text-generation"}
        self.stdout.write(f"training {dataset}: {spec.steps} steps, rank {spec.rank}, {threads} threads…")
        with tempfile.TemporaryDirectory() as scratch:
            data = Path(scratch)
            for name, content in files.items():
                (data / name).write_bytes(content)
            result = train_adapter(base_dir, [data / "train.jsonl"], out / dataset, spec,
                                   base_model_name=SMOLLM2_NAME, eval_files=[data / "eval.jsonl"],
                                   threads=threads, device="cpu", card=card, on_progress=self.progress)
        written = {path: sha256_of((out / dataset / path).read_bytes()) for path in DEMO_ADAPTER_FILES}
        extra = sorted({p.name for p in (out / dataset).iterdir()} - set(DEMO_ADAPTER_FILES))
        if extra:  # the seeding uploads DEMO_ADAPTER_FILES only
            raise CommandError(f"the engine wrote files the seeding would not upload: {', '.join(extra)}")
        entry = {
            "dataset": ref, "base_model": SMOLLM2_NAME, "spec": spec.to_dict(),
            "data_sha256": {name: sha256_of(content) for name, content in files.items() if name != "README.md"},
            "files_sha256": written, "train_loss": result.train_loss, "eval_loss": result.eval_loss,
            "seconds": round(result.seconds, 1), "threads": threads, "device": result.device,
            "libraries": result.versions,
        }
        self.stdout.write(self.style.SUCCESS(
            f"  {dataset}: train loss {result.train_loss:.4f}, eval loss {result.eval_loss:.4f}, "
            f"{result.seconds:.0f} s → {out / dataset}"))
        return entry

    def progress(self, progress: Progress) -> None:
        if progress.step % 10 == 0 or progress.step == progress.total_steps:
            self.stdout.write(f"  step {progress.step}/{progress.total_steps}: loss {progress.loss:.4f}, "
                              f"{progress.tokens_per_second:.0f} tokens/s")

    def evaluate(self, base_dir: Path, out: Path, threads: int) -> dict:
        """Exact match on each eval split: base, adapter alone, and (members) the demo stack; as the hub scores."""
        import torch

        torch.set_num_threads(threads)
        suites = {}
        for dataset in DEMO_ADAPTERS:
            data = demo_dataset_files(dataset)["eval.jsonl"]
            rows = [record.value for record in records_of(io.BytesIO(data), "eval.jsonl")]
            suites[dataset] = task_suite(f"task:{DEMO_OWNER}/{dataset}:eval",
                                         [task_row(index, row) for index, row in enumerate(rows)])

        def exact_match(adapters: list[tuple[Path, float]], datasets: list[str]) -> dict[str, float]:
            backend = TransformersBackend(base_dir, adapters=adapters)  # loaded once for all its suites
            return {d: run_suite(suites[d], backend)["metrics"]["exact_match"]["value"] for d in datasets}

        names = list(DEMO_ADAPTERS)
        base = exact_match([], names)
        scores: dict = {"metric": "exact_match", "adapters": {}}
        for dataset in names:
            alone = exact_match([(out / dataset, 1.0)], [dataset])[dataset]
            scores["adapters"][dataset] = {"base": base[dataset], "adapter": alone, "items": len(suites[dataset].items)}
            self.stdout.write(f"  {dataset}: exact match base {base[dataset]:.3f}, adapter {alone:.3f}")
        members = [dataset for dataset, _ in DEMO_STACK_MEMBERS]
        stacked = exact_match([(out / dataset, weight) for dataset, weight in DEMO_STACK_MEMBERS], members)
        summary = stacking_summary({d: scores["adapters"][d]["base"] for d in members},
                                   {d: scores["adapters"][d]["adapter"] for d in members}, stacked,
                                   min_gain=max(1 / scores["adapters"][d]["items"] for d in members) - 1e-9)
        scores["stack"] = {"members": dict(DEMO_STACK_MEMBERS), "stacked": stacked,
                           "stacking_score": summary["per_adapter"]}
        self.stdout.write(f"  demo stack: exact match {stacked}, stacking scores {summary['per_adapter']}")
        return scores

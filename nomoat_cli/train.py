"""`nomoat train`: fine-tune a LoRA adapter on a hosted dataset, on the hub (follow the job) or on this machine
(`--local`: the same engine code the hub's workers run, then the result is pushed like any adapter)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nomoat_cli.client import api_path
from nomoat_cli.commands import Context, download_all, parse_ref, poll, pull_repository, push
from nomoat_cli.errors import CliError, ExitCode
from nomoat_cli.progress import Progress
from nomoat_cli.transfer import CHUNK_BYTES, RemoteFile

JOB_DONE = ("finished", "failed", "cancelled")


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `train` with main's subcommand factory."""
    train = command("train", run, "train a LoRA adapter on a hosted dataset (on the hub, or here with --local) and "
                    "publish it as a new version of owner/name")
    train.add_argument("dataset", metavar="owner/name[@version]")
    train.add_argument("--base", required=True, metavar="BASE_MODEL", help="the base model's name on the hub")
    train.add_argument("--into", required=True, metavar="owner/name", help="your adapter repository")
    train.add_argument("--split", default="train", help="(default: train)")
    train.add_argument("--eval-split", help="(default: the dataset's held-out split)")
    train.add_argument("--rank", type=int, default=8, help="(default 8)")
    train.add_argument("--alpha", type=float, default=16.0, help="(default 16)")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--target-modules", default="q_proj,v_proj", help="comma-separated (default q_proj,v_proj)")
    train.add_argument("--rslora", action="store_true", help="rank-stabilized LoRA scaling")
    train.add_argument("--steps", type=int, help="(default 200, unless --epochs)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--learning-rate", type=float, default=2e-4, help="(default 2e-4)")
    train.add_argument("--schedule", default="linear", choices=("constant", "constant_with_warmup", "linear", "cosine"))
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=8, help="(default 8)")
    train.add_argument("--max-seq-len", type=int, default=256, help="(default 256)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--local", action="store_true",
                       help="train on this machine (needs torch, transformers and peft) and push the result")
    train.add_argument("--base-dir", type=Path, metavar="DIR",
                       help="with --local: a local copy of the base model (default: downloaded from the hub)")
    train.add_argument("--threads", type=int, default=1, help="with --local: CPU threads (default 1: reproducible)")
    train.add_argument("--timeout", type=float, default=24 * 3600, metavar="SECONDS",
                       help="how long to follow the job (default 24 h)")


def training_request(args: argparse.Namespace) -> dict[str, Any]:
    """The API's request body from the options: the same spec the hub hashes and trains."""
    request: dict[str, Any] = {
        "base_model": args.base, "dataset": args.dataset, "split": args.split, "into": args.into,
        "lora": {"rank": args.rank, "alpha": args.alpha, "dropout": args.dropout, "use_rslora": args.rslora,
                 "target_modules": [m.strip() for m in args.target_modules.split(",") if m.strip()]},
        "learning_rate": args.learning_rate, "schedule": args.schedule, "warmup_steps": args.warmup_steps,
        "batch_size": args.batch_size, "max_seq_len": args.max_seq_len, "seed": args.seed,
    }
    if args.epochs is not None:
        request["epochs"] = args.epochs
    else:
        request["steps"] = args.steps if args.steps is not None else 200
    if args.eval_split:
        request["eval_split"] = args.eval_split
    return request


def run(ctx: Context, args: argparse.Namespace) -> None:
    if args.epochs is not None and args.steps is not None:
        raise CliError("give --steps or --epochs, not both")
    if args.local:
        train_here(ctx, args)
    else:
        train_on_hub(ctx, args)


def _progress_text(job: dict[str, Any]) -> str:
    progress = job["progress"]
    parts = [job["state"], f"step {progress['step']}/{progress['total_steps']}"]
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4f}")
    if job["state"] == "running" and progress.get("eta_seconds") is not None:
        parts.append(f"about {progress['eta_seconds']:.0f} s left")
    return ", ".join(parts)


def train_on_hub(ctx: Context, args: argparse.Namespace) -> None:
    """POST the request, then follow the job with a progress bar until it ends."""
    if not ctx.client.token:
        raise CliError(f"not logged in to {ctx.client.endpoint}: run `nomoat login` or set NOMOAT_TOKEN")
    job = ctx.client.post_json(api_path("trainings"), training_request(args)).json()
    print(f"training job {job['id']}: {ctx.client.url(job['page_url'])}")
    with Progress(f"training {args.into}", job["progress"]["total_steps"] or None, unit="",
                  enabled=ctx.progress) as bar:
        job = poll(lambda: ctx.client.get_json(job["url"]), lambda j: j["state"] in JOB_DONE, timeout=args.timeout,
                   on_update=lambda j: bar.update(done=j["progress"]["step"], message=_progress_text(j)),
                   what=f"training job {job['id']}")
    if job["state"] != "finished":
        raise CliError(f"training job {job['id']} {job['state']}: {job.get('failure_reason') or 'no reason given'}",
                       ExitCode.API)
    result, produced = job.get("result") or {}, job.get("produced") or {}
    eval_loss = result.get("eval_loss")
    print(f"trained in {result.get('seconds', 0):.0f} s: train loss {result.get('train_loss', float('nan')):.4f}"
          + (f", eval loss {eval_loss:.4f}" if eval_loss is not None else ""))
    if produced:
        print(f"{produced['adapter']}@{produced['version']}: {produced['state']}")


def _download_base(ctx: Context, name: str, folder: Path) -> Path:
    owner, _, model = name.partition("/")
    detail = ctx.client.get_json(api_path("base-models", owner, model))
    files = [RemoteFile(ctx.client.url(api_path("base-models", owner, model, "files", f["path"])), f["path"],
                        f["size"], f["sha256"]) for f in detail["files"] if not f["path"].endswith(".gguf")]
    download_all(ctx, files, folder)
    return folder


def train_here(ctx: Context, args: argparse.Namespace) -> None:
    """Download the dataset version (and the base unless --base-dir), train with the engine, push the adapter."""
    try:
        from workers.engine.datasets import EVAL_SPLITS
        from workers.engine.errors import EngineInputError
        from workers.engine.training import TrainingSpec, lineage_card, train_adapter
    except ImportError as exc:
        raise CliError(f"--local needs the training libraries ({exc.name} is missing): pip install 'nomoat[ml]'") \
            from None
    ref = parse_ref(args.dataset)
    request = training_request(args)
    try:
        spec = TrainingSpec.from_dict({key: request[key] for key in request
                                       if key not in ("base_model", "dataset", "split", "eval_split", "into")})
    except EngineInputError as exc:
        raise CliError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="nomoat-train-") as scratch:
        work = Path(scratch)
        pull_repository(ctx, ref, "dataset", work / "dataset")
        repo = ctx.client.get_json(api_path("datasets", ref.owner, ref.name))
        number = ref.number or next(v["number"] for v in repo["versions"] if v["state"] == "published")
        version = ctx.client.get_json(api_path("datasets", ref.owner, ref.name, "versions", number))
        splits = (version.get("stats") or {}).get("splits") or {}
        if args.split not in splits:
            raise CliError(f"{ref.owner}/{ref.name}@{number} has no split {args.split!r} (it has "
                           f"{', '.join(sorted(splits)) or 'none'})")
        eval_split = args.eval_split or next((s for s in EVAL_SPLITS if s in splits and s != args.split), "")
        base_dir = args.base_dir or _download_base(ctx, args.base, work / "base")
        dataset_ref = f"{ref.owner}/{ref.name}@{number}"
        card = lineage_card(dataset=dataset_ref, license=version.get("license") or "", eval_split=eval_split)
        with Progress(f"training {args.into} here", spec.total_steps(1) if spec.steps else None, unit="",
                      enabled=ctx.progress) as bar:
            try:
                result = train_adapter(
                    base_dir, [work / "dataset" / name for name in splits[args.split]], work / "adapter", spec,
                    base_model_name=args.base, eval_files=[work / "dataset" / n for n in splits.get(eval_split, [])],
                    on_progress=lambda p: bar.update(done=p.step, message=f"step {p.step}/{p.total_steps}, loss "
                                                     f"{p.loss:.4f}, {p.tokens_per_second:.0f} tokens/s"),
                    threads=args.threads, card=card)
            except EngineInputError as exc:
                raise CliError(str(exc)) from None
        print(f"trained {result.steps} steps in {result.seconds:.0f} s: train loss {result.train_loss:.4f}"
              + (f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""))
        push(ctx, argparse.Namespace(path=str(work / "adapter"), repo=args.into, kind="adapter", base_model=args.base,
                                     summary=f"trained on {dataset_ref}", chunk_size=CHUNK_BYTES, no_wait=False,
                                     timeout=1800))

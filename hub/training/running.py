"""A training job on a worker: lay out the base and the dataset as folders, train with the engine, report.

Imported by the task only once it holds the job: it loads torch, which the web processes never need.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from hub.catalog.workdir import materialize_base, materialize_shared, version_files
from hub.training.models import TrainingJob
from hub.training.services import (
    training_cancel_requested,
    training_record_checkpoint,
    training_record_progress,
    training_record_start,
)
from workers.engine.training import Progress, TrainingResult, TrainingSpec, lineage_card, train_adapter

PROGRESS_EVERY_SECONDS = 1.0  # database writes of progress, at most this often (and at the last step)
CANCEL_CHECK_EVERY_SECONDS = 0.5  # reads of the cancel flag, at most this often


def checkpoint_dir(job: TrainingJob) -> Path:
    """Under the data dir, keyed by job: a worker that takes over a dead one's job finds its checkpoints here."""
    return settings.TRAINING_DIR / str(job.pk) / "checkpoints"


def adapter_card(job: TrainingJob) -> dict:
    dataset = job.dataset_version
    return lineage_card(dataset=str(dataset), license=dataset.license or job.base_model.license,
                        eval_split=job.eval_split)


def run_job(job: TrainingJob, out_dir: Path, *, lease_seconds: int) -> TrainingResult:
    import time

    base_dir = materialize_base(job.base_model)
    files = version_files(job.dataset_version)
    data_dir = materialize_shared("datasets", files)
    splits = job.dataset_version.stats.get("splits") or {}
    train_files = [data_dir / name for name in splits[job.split]]
    eval_files = [data_dir / name for name in splits.get(job.eval_split, [])] if job.eval_split else []
    spec = TrainingSpec.from_dict(job.spec)
    last_write, last_check = [0.0], [0.0]
    started, stop = [False], [False]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last_check[0] >= CANCEL_CHECK_EVERY_SECONDS:
            last_check[0] = now
            stop[0] = training_cancel_requested(job=job)
        return stop[0]

    def on_progress(progress: Progress) -> None:
        if not started[0]:  # the first step tells where this attempt began
            started[0] = True
            training_record_start(job=job, resumed_from_step=progress.step - 1, total_steps=progress.total_steps)
        now = time.monotonic()
        if now - last_write[0] >= PROGRESS_EVERY_SECONDS or progress.step == progress.total_steps:
            last_write[0] = now
            training_record_progress(job=job, step=progress.step, loss=progress.loss,
                                     tokens_per_second=progress.tokens_per_second, eta_seconds=progress.eta_seconds,
                                     history=progress.loss_history, lease_seconds=lease_seconds)

    return train_adapter(
        base_dir, train_files, out_dir, spec, base_model_name=job.base_model.name, eval_files=eval_files,
        checkpoint_dir=checkpoint_dir(job), checkpoint_every_steps=settings.TRAINING_CHECKPOINT_EVERY_STEPS,
        checkpoint_every_seconds=settings.TRAINING_CHECKPOINT_EVERY_SECONDS, on_progress=on_progress,
        on_checkpoint=lambda step: training_record_checkpoint(job=job, step=step),
        should_stop=should_stop, threads=settings.TRAINING_THREADS,
        device=settings.TRAINING_DEVICE, card=adapter_card(job),
    )

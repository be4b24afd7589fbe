"""The training Celery tasks (queue `training`): train a job, and take over what a dead worker left.

A job holds a lease its heartbeat renews; a worker that dies leaves checkpoints under TRAINING_DIR, and the next
worker to claim the job resumes from the last of them. Nothing is published until the last step is done.
"""

from __future__ import annotations

import logging
import shutil

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from hub.catalog.workdir import scratch_dir
from hub.core.leases import lease_heartbeat
from hub.core.tasks import failures_recorded, run_when_a_worker_starts
from hub.training.models import TrainingJob
from hub.training.services import (
    training_claim,
    training_publish,
    training_record_cancelled,
    training_record_failure,
    training_renew_lease,
    trainings_requeue_stale,
)
from hub.training.signals import training_queued

log = logging.getLogger(__name__)
QUEUE = "training"
TAKEN_OVER = "taken over by another worker"  # its lease lapsed: the checkpoints are the new worker's now


@shared_task(name="training.train_job", queue=QUEUE, acks_late=True)
def train_job(job_id: int) -> str:
    """Train one job (resuming from its last checkpoint), then publish the adapter as a new version."""
    lease = settings.TRAINING_LEASE_SECONDS
    job = training_claim(job_id=job_id, lease_seconds=lease)
    if job is None:
        return "nothing to do"
    out_dir = scratch_dir("training", str(job.pk))
    # Imported here: it loads torch, which workers need and the web processes that enqueue do not.
    from hub.training.running import checkpoint_dir, run_job
    from workers.engine.training import TrainingCancelled

    outcome = "failed"
    with (failures_recorded(lambda failure: training_record_failure(job=job, reason=failure.reason),
                            name=f"training job {job.pk}"),
          lease_heartbeat(lambda: training_renew_lease(job=job, lease_seconds=lease), lease_seconds=lease,
                          name=f"training-{job.pk}")):
        try:
            result = run_job(job, out_dir / "adapter", lease_seconds=lease)
        except TrainingCancelled:
            outcome = "cancelled" if training_record_cancelled(job=job) else TAKEN_OVER
        else:
            summary = {"steps": result.steps, "train_loss": result.train_loss, "eval_loss": result.eval_loss,
                       "seconds": round(result.seconds, 2), "tokens": result.tokens,
                       "tokens_per_second": round(result.tokens / result.seconds, 2) if result.seconds else None,
                       "resumed_from_step": result.resumed_from_step, "examples": result.examples,
                       "truncated_rows": result.truncated, "dropped_rows": result.dropped,
                       "device": result.device, "threads": result.threads, "libraries": result.versions}
            version = training_publish(job=job, adapter_dir=out_dir / "adapter", result=summary)
            outcome = "published" if version is not None else TAKEN_OVER
    if outcome != TAKEN_OVER:
        shutil.rmtree(checkpoint_dir(job), ignore_errors=True)  # finished, failed or cancelled: no resume
    shutil.rmtree(out_dir, ignore_errors=True)
    return outcome


@receiver(training_queued, dispatch_uid="training.enqueue_job")
def enqueue_job(sender: type[TrainingJob], job_id: int, **kwargs: object) -> None:
    train_job.delay_on_commit(job_id)


@shared_task(name="training.requeue_stale_jobs", queue=QUEUE)
def requeue_stale_jobs() -> list[int]:
    """Train again what a dead worker left: every minute (beat) and when a worker starts."""
    return trainings_requeue_stale()


run_when_a_worker_starts(requeue_stale_jobs)

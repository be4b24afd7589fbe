"""The evaluations' Celery tasks (queue `evals`): running one suite on one subject, and re-running lost runs.

Uploads and downloads never wait for these: they run on their own queue, after publication and builds.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from hub.catalog.workdir import materialize_cached, materialize_shared
from hub.core.leases import lease_heartbeat
from hub.core.tasks import failures_recorded, run_when_a_worker_starts
from hub.evals.models import EvalRun
from hub.evals.services import (
    eval_run_claim,
    eval_run_record_failure,
    eval_run_record_result,
    eval_run_renew_lease,
    eval_runs_requeue_stale,
)
from hub.evals.signals import eval_run_queued
from hub.evals.subjects import Subject, run_subject
from hub.evals.suites import suite_from_spec
from workers.engine.errors import EngineInputError
from workers.engine.evals import Backend, GGUFBackend, TransformersBackend, run_suite

QUEUE = "evals"


def eval_backend(subject: Subject) -> Backend:
    """The subject's files, materialized once in the work dir, loaded by the engine backend of its runtime."""
    if subject.gguf_file is not None:
        path, sha256 = subject.gguf_file
        return GGUFBackend(materialize_cached([subject.gguf_file], settings.WORK_DIR / "gguf" / sha256[:24]) / path)
    model_dir = materialize_shared("models", list(subject.model_files))
    adapters = [materialize_shared("adapters", list(files)) for files in subject.adapter_files]
    return TransformersBackend(model_dir, adapters=adapters, device=settings.EVAL_DEVICE)


@shared_task(name="evals.run_eval", queue=QUEUE, acks_late=True, soft_time_limit=settings.EVAL_TIMEOUT_SECONDS,
             time_limit=settings.EVAL_TIMEOUT_SECONDS + 60)
def run_eval(run_id: int) -> str:
    """Evaluate one (suite, subject): rebuild the suite from the run's spec, load the subject, run the engine."""
    lease = settings.EVAL_LEASE_SECONDS
    run = eval_run_claim(run_id=run_id, lease_seconds=lease)
    if run is None:
        return "nothing to do"
    # Any failure to load or run the model is the run's result, with its reason: recorded, not raised again.
    with (
        failures_recorded(lambda failure: eval_run_record_failure(run=run, reason=failure.reason),
                          name=f"eval run {run_id}", time_limit_seconds=settings.EVAL_TIMEOUT_SECONDS,
                          reraise_bugs=False) as outcome,
        lease_heartbeat(lambda: eval_run_renew_lease(run=run, lease_seconds=lease), lease_seconds=lease,
                        name=f"eval-{run_id}"),
    ):
        suite = suite_from_spec(run.suite, run.suite_spec)
        if suite.version != run.suite_version:
            raise EngineInputError(f"this worker builds {run.suite} version {suite.version}, not "
                                   f"{run.suite_version} (another engine or corpus)", field="suite_version")
        result = run_suite(suite, eval_backend(run_subject(run)), seed=settings.EVAL_SEED)
    if outcome.failed:
        return "failed"
    return "finished" if eval_run_record_result(run=run, result=result) else "superseded"


@receiver(eval_run_queued, dispatch_uid="evals.enqueue_run")
def enqueue_run(sender: type[EvalRun], run_id: int, **kwargs: object) -> None:
    # As for builds: the run's time limits are those of the worker that takes it (EVAL_TIMEOUT_SECONDS there).
    run_eval.apply_async_on_commit((run_id,), time_limit=None, soft_time_limit=None)


@shared_task(name="evals.requeue_stale_runs", queue=QUEUE)
def requeue_stale_runs() -> list[int]:
    """Run again what a dead worker or a lost message left: every minute (beat) and when a worker starts."""
    return eval_runs_requeue_stale(queued_after_seconds=settings.EVAL_REQUEUE_QUEUED_AFTER_SECONDS)


run_when_a_worker_starts(requeue_stale_runs)

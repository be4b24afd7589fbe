"""The data reports' Celery tasks (queue `evals`, beside evaluations: heavy reads that uploads never wait for).

Thin: claim the row under a lease renewed by a heartbeat, lay the blobs out as local files, call the engine,
record. Idempotent and `acks_late`: a duplicate finds nothing to claim; a dead worker's lease lapses and the
requeue (on worker start and by the beat) sends the job again.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from hub.catalog.signals import version_published
from hub.catalog.workdir import materialize, materialize_cached, scratch_dir
from hub.core.leases import lease_heartbeat
from hub.core.tasks import failures_recorded, run_when_a_worker_starts
from hub.datareports.models import Contamination, DataReport
from hub.datareports.services import (
    TOKENIZER_FILE,
    contamination_claim,
    contamination_record,
    contamination_renew_lease,
    contamination_schedule_for,
    data_report_claim,
    data_report_record,
    data_report_renew_lease,
    jobs_requeue_stale,
)
from hub.datareports.signals import contamination_queued, data_report_queued
from workers.engine.datareport import contamination_figures, data_report, tokenizer_budget

log = logging.getLogger(__name__)
QUEUE = "evals"


def _tokenizer_path(sha256: str) -> Path:
    folder = materialize_cached([(TOKENIZER_FILE, sha256)], settings.WORK_DIR / "tokenizers" / sha256[:24])
    return folder / TOKENIZER_FILE


def _work_on(job: DataReport | Contamination | None, *, name: str, renew: Callable[[], bool],
             record: Callable[[dict[str, Any] | None, str], bool], work: Callable[[Path], dict[str, Any]]) -> str:
    """A claimed job's run: its lease renewed while `work` runs in a scratch folder of its own, the result or the
    failure recorded through the app's service."""
    if job is None:
        return "nothing to do"
    scratch = scratch_dir(name, str(job.pk))
    try:
        with failures_recorded(lambda failure: record(None, failure.reason), name=f"{name} {job.pk}",
                               reraise_bugs=False, time_limit_seconds=settings.EVAL_TIMEOUT_SECONDS) as outcome, \
                lease_heartbeat(renew, lease_seconds=settings.DATA_REPORT_LEASE_SECONDS, name=f"{name}-{job.pk}"):
            result = work(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if outcome.failed:
        return "failed"
    return "finished" if record(result, "") else "superseded"


@shared_task(name="datareports.compute_report", queue=QUEUE, acks_late=True,
             soft_time_limit=settings.EVAL_TIMEOUT_SECONDS, time_limit=settings.EVAL_TIMEOUT_SECONDS + 60)
def compute_report(report_id: int) -> str:
    lease = settings.DATA_REPORT_LEASE_SECONDS
    report = data_report_claim(report_id=report_id, lease_seconds=lease)

    def work(scratch: Path) -> dict[str, Any]:
        materialize([tuple(f) for f in report.spec["files"]], scratch)
        budgets = [tokenizer_budget(b["name"], _tokenizer_path(b["tokenizer"]), b["max_tokens"])
                   for b in report.spec["budgets"]]
        return data_report(scratch, report.spec["splits"], budgets=budgets)

    return _work_on(report, name="datareport", work=work,
                    renew=lambda: data_report_renew_lease(report=report, lease_seconds=lease),
                    record=lambda result, failure: data_report_record(report=report, result=result, failure=failure))


@shared_task(name="datareports.measure_contamination", queue=QUEUE, acks_late=True,
             soft_time_limit=settings.EVAL_TIMEOUT_SECONDS, time_limit=settings.EVAL_TIMEOUT_SECONDS + 60)
def measure_contamination(check_id: int) -> str:
    lease = settings.DATA_REPORT_LEASE_SECONDS
    check = contamination_claim(check_id=check_id, lease_seconds=lease)

    def work(scratch: Path) -> dict[str, Any]:
        train, held_out = ([tuple(f) for f in check.spec[key]] for key in ("train_files", "eval_files"))
        materialize(train, scratch / "train")
        materialize(held_out, scratch / "eval")
        return contamination_figures(scratch / "eval", [p for p, _ in held_out], scratch / "train",
                                     [p for p, _ in train])

    return _work_on(check, name="contamination", work=work,
                    renew=lambda: contamination_renew_lease(check=check, lease_seconds=lease),
                    record=lambda result, failure: contamination_record(check=check, result=result, failure=failure))


@shared_task(name="datareports.schedule_contamination", queue=QUEUE, acks_late=True)
def schedule_contamination(version_id: int) -> int:
    """The checks a newly published version needs (idempotent: existing checks are shared)."""
    from hub.catalog.models import Version

    version = Version.objects.select_related("repository").filter(pk=version_id).first()
    return len(contamination_schedule_for(version=version)) if version is not None else 0


@receiver(version_published, dispatch_uid="datareports.schedule_contamination")
def enqueue_contamination_schedule(sender: type, version: object, **kwargs: object) -> None:
    # Sent after the publication committed: enqueue now; never raise into the request that published.
    try:
        schedule_contamination.delay(version.pk)
    except Exception:
        log.exception("could not schedule the contamination checks of %s", version)


@receiver(data_report_queued, dispatch_uid="datareports.enqueue_report")
def enqueue_report(sender: type[DataReport], report_id: int, **kwargs: object) -> None:
    compute_report.delay_on_commit(report_id)


@receiver(contamination_queued, dispatch_uid="datareports.enqueue_contamination")
def enqueue_contamination(sender: type[Contamination], check_id: int, **kwargs: object) -> None:
    measure_contamination.delay_on_commit(check_id)


@shared_task(name="datareports.requeue_stale", queue=QUEUE)
def requeue_stale() -> list[int]:
    """Send again what a dead worker or a lost message left: every minute (beat) and when a worker starts."""
    return jobs_requeue_stale(queued_after_seconds=settings.EVAL_REQUEUE_QUEUED_AFTER_SECONDS)


run_when_a_worker_starts(requeue_stale)

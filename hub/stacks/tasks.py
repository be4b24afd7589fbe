"""The stacks' Celery tasks (queue `builds`): building an artifact, and re-building what a dead worker left.

A build holds a lease its heartbeat renews; a failure is recorded with its reason (bad input, a failed
verification gate, the time limit, or a bug of ours: `hub.core.tasks.failures_recorded`) after the work copies
are cleared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from hub.core.leases import lease_heartbeat
from hub.core.tasks import TaskFailure, failures_recorded, run_when_a_worker_starts
from hub.stacks.models import StackBuild
from hub.stacks.services import (
    stack_claim,
    stack_record_failure,
    stack_record_ready,
    stack_renew_lease,
    stacks_flush_downloads,
    stacks_requeue_stale,
)
from hub.stacks.signals import stack_queued
from workers.engine.fsutil import staging_prefix

QUEUE = "builds"


def clear_staging(out_dir: Path) -> None:
    """Holding the build's lease, this task is the only one building the recipe: a staging folder here is a dead
    worker's (never renamed into place, so never served) or this task's own. A finished `out_dir` a dead worker
    renamed into place stays: the engine returns it rather than build again, and storing re-checks each sha256."""
    for leftover in out_dir.parent.glob(staging_prefix(out_dir) + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def clear_work_copies(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
    clear_staging(out_dir)


@shared_task(name="stacks.build_stack", queue=QUEUE, acks_late=True, soft_time_limit=settings.STACK_BUILD_TIMEOUT_SECONDS,
             time_limit=settings.STACK_BUILD_TIMEOUT_SECONDS + 60)
def build_stack(build_id: int) -> str:
    """Build one stack artifact: materialize inputs, run the engine, verify while storing, record."""
    lease = settings.STACK_LEASE_SECONDS
    build = stack_claim(build_id=build_id, lease_seconds=lease)
    if build is None:
        return "nothing to do"
    out_dir = settings.WORK_DIR / "stacks" / build.recipe_hash
    clear_staging(out_dir)

    def fail(failure: TaskFailure) -> None:
        clear_work_copies(out_dir)  # before anyone is told how the build ended
        stack_record_failure(build=build, reason=failure.reason, details=failure.details)

    with (
        failures_recorded(fail, name=f"stack build {build.recipe_hash}",
                          time_limit_seconds=settings.STACK_BUILD_TIMEOUT_SECONDS) as outcome,
        lease_heartbeat(lambda: stack_renew_lease(build=build, lease_seconds=lease), lease_seconds=lease,
                        name=f"build-{build_id}"),
    ):
        # Imported here: it loads torch, which workers need and the web processes that enqueue do not
        # (and inside the block, so even the import counts against the build's time limit).
        from hub.stacks.building import build_and_store

        manifest, files = build_and_store(build, out_dir)
        clear_work_copies(out_dir)  # the blob store holds the artifact now
    if outcome.failed:
        return "failed"
    stack_record_ready(build=build, manifest=manifest, files=files)
    return "ready"


@receiver(stack_queued, dispatch_uid="stacks.enqueue_build")
def enqueue_build(sender: type[StackBuild], build_id: int, **kwargs: object) -> None:
    # No time limits in the message: the build runs under those of the worker that takes it
    # (its STACK_BUILD_TIMEOUT_SECONDS), not those of the process that asked for it.
    build_stack.apply_async_on_commit((build_id,), time_limit=None, soft_time_limit=None)


@shared_task(name="stacks.requeue_stale_builds", queue=QUEUE)
def requeue_stale_builds() -> list[int]:
    """Build again what a dead worker left: every minute (beat) and when a worker starts."""
    return stacks_requeue_stale()


# On the uploads queue, whose tasks take seconds: behind a builds worker's hour-long build the counts would wait.
@shared_task(name="stacks.flush_download_counts", queue="uploads")
def flush_download_counts() -> int:
    """Fold the downloads buffered in Redis into the builds' rows (beat, DOWNLOAD_COUNT_FLUSH_SECONDS)."""
    return stacks_flush_downloads()


run_when_a_worker_starts(requeue_stale_builds)

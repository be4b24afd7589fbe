"""The stacks' Celery tasks (queue `builds`): building an artifact, and re-building what a dead worker left.

A build holds a lease its heartbeat renews; a failure is recorded with its reason (bad input, a failed
verification gate, the time limit, or a bug of ours) after the work copies are cleared.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.dispatch import receiver

from hub.core.leases import lease_heartbeat
from hub.core.tasks import run_when_a_worker_starts
from hub.stacks.models import StackBuild
from hub.stacks.services import (
    stack_claim,
    stack_record_failure,
    stack_record_ready,
    stack_renew_lease,
    stacks_requeue_stale,
)
from hub.stacks.signals import stack_queued
from workers.engine.errors import EngineInputError, VerificationError
from workers.engine.fsutil import staging_prefix

log = logging.getLogger(__name__)
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

    def fail(reason: str, details: dict | None = None) -> str:
        clear_work_copies(out_dir)  # before anyone is told how the build ended
        stack_record_failure(build=build, reason=reason, details=details)
        return "failed"

    try:
        with lease_heartbeat(lambda: stack_renew_lease(build=build, lease_seconds=lease), lease_seconds=lease,
                             name=f"build-{build_id}"):
            # Imported here: it loads torch, which workers need and the web processes that enqueue do not
            # (and inside the try, so even the import counts against the build's time limit).
            from hub.stacks.building import build_and_store

            manifest, files = build_and_store(build, out_dir)
            clear_work_copies(out_dir)  # the blob store holds the artifact now
    except SoftTimeLimitExceeded:
        return fail(f"timed out after {settings.STACK_BUILD_TIMEOUT_SECONDS:g} s")
    except EngineInputError as exc:
        return fail(str(exc))
    except VerificationError as exc:
        return fail(f"verification failed: {exc}", details=exc.details)
    except Exception as exc:
        # A bug, not bad input: fail the build visibly instead of retrying it forever on lease expiry.
        log.exception("stack build %s crashed", build.recipe_hash)
        fail(f"internal error ({type(exc).__name__}): {exc}")
        raise
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


run_when_a_worker_starts(requeue_stale_builds)

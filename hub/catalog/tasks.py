"""The catalog's Celery tasks (queue `uploads`): validating versions and expiring upload sessions.

Thin, as every app's tasks: load ids, call the engine through `hub.catalog.validation`, record the result
through services. Idempotent and `acks_late`: a duplicate finds nothing to do, and a worker that dies
mid-task leaves the version's lease to lapse, after which the beat's requeue validates it again.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from hub.catalog.models import Version
from hub.catalog.services import (
    version_claim_for_validation,
    version_record_validation,
    version_renew_validation_lease,
    versions_flush_downloads,
    versions_requeue_stale,
)
from hub.catalog.signals import version_uploaded
from hub.catalog.uploads import upload_sessions_expire
from hub.catalog.validation import crash_report, validate_version_files
from hub.core.leases import lease_heartbeat
from hub.core.tasks import failures_recorded, run_when_a_worker_starts

log = logging.getLogger(__name__)
QUEUE = "uploads"


@shared_task(name="catalog.validate_version", queue=QUEUE, acks_late=True)
def validate_version(version_id: int) -> str:
    lease = settings.VALIDATION_LEASE_SECONDS
    version = version_claim_for_validation(version_id=version_id, lease_seconds=lease)
    if version is None:
        return "nothing to do"
    # Bad input is the report's business; what raises is a bug of ours: end visibly (the uploader can upload
    # again) rather than be claimed again and crash on every lease expiry.
    with (
        failures_recorded(lambda failure: version_record_validation(
                              version=version, report=crash_report(version, failure.error).to_dict()),
                          name=f"validation of {version}") as outcome,
        lease_heartbeat(lambda: version_renew_validation_lease(version=version, lease_seconds=lease),
                        lease_seconds=lease, name=f"version-{version_id}"),
    ):
        report, files = validate_version_files(version)
    if outcome.failed:
        return "rejected"
    result = version_record_validation(version=version, report=report.to_dict(), files=files)
    log.info("validated %s: %s", result, result.state)
    return result.state


@receiver(version_uploaded, dispatch_uid="catalog.enqueue_validation")
def enqueue_validation(sender: type[Version], version_id: int, **kwargs: object) -> None:
    validate_version.delay_on_commit(version_id)


@shared_task(name="catalog.requeue_stale_validations", queue=QUEUE)
def requeue_stale_validations() -> list[int]:
    """Validate again what a dead worker or a lost message left: every minute (beat) and when a worker starts."""
    return versions_requeue_stale(uploaded_after_seconds=settings.REQUEUE_UPLOADED_AFTER_SECONDS)


@shared_task(name="catalog.expire_upload_sessions", queue=QUEUE)
def expire_upload_sessions() -> int:
    """Delete resumable upload sessions idle past UPLOAD_SESSION_TTL_SECONDS, with their .part files (beat)."""
    return upload_sessions_expire()


@shared_task(name="catalog.flush_download_counts", queue=QUEUE)
def flush_download_counts() -> int:
    """Fold the downloads buffered in Redis into the versions' rows (beat, DOWNLOAD_COUNT_FLUSH_SECONDS)."""
    return versions_flush_downloads()


run_when_a_worker_starts(requeue_stale_validations)

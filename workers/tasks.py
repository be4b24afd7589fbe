"""Celery tasks: thin. Load ids, call the engine on local files, record results through hub services.

Every task is idempotent (a redelivered or duplicated task finds nothing left to do) and
runs with acks_late, so a worker that dies mid-task leaves it to be run again.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from hub.catalog.blobstore import copy_blob_to, get_blob_store
from hub.catalog.models import BaseModel, Version
from hub.catalog.services import (
    blob_put_file,
    version_claim_for_validation,
    version_record_validation,
    versions_requeue_stale,
)
from workers.engine.archive import ArchiveLimits, extract_upload, is_archive
from workers.engine.errors import EngineInputError
from workers.engine.validation import Check, ValidationReport, validate_upload

log = logging.getLogger(__name__)


def upload_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_files=settings.MAX_UPLOAD_FILES,
        max_total_bytes=settings.MAX_UNPACKED_BYTES,
        max_ratio=settings.MAX_COMPRESSION_RATIO,
        max_file_bytes=settings.MAX_UNPACKED_BYTES,
    )


def materialize(version: Version, folder: Path) -> list[Path]:
    """The version's files as local paths under folder (hard links into a local blob store)."""
    store = get_blob_store()
    return [copy_blob_to(store, f.blob.sha256, folder / f.path) for f in version.files.select_related("blob")]


@shared_task(name="workers.tasks.validate_version", acks_late=True)
def validate_version(version_id: int) -> str:
    version = version_claim_for_validation(version_id=version_id, lease_seconds=settings.VALIDATION_LEASE_SECONDS)
    if version is None:
        return "nothing to do"
    base_models = {b.name: b.module_shapes for b in BaseModel.objects.all()}
    settings.WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="validate-", dir=settings.WORK_DIR) as tmp:
        source = Path(tmp) / "raw"
        paths = materialize(version, source)
        packed = len(paths) == 1 and is_archive(paths[0])
        if packed:
            source = Path(tmp) / "upload"
            try:
                extract_upload(paths[0], source, limits=upload_limits())
            except EngineInputError as exc:
                report = ValidationReport(version.repository.kind,
                                          [Check("archive", False, str(exc), file=exc.file, field=exc.field)])
                return version_record_validation(version=version, report=report.to_dict()).state
        report = validate_upload(source, version.repository.kind, base_models,
                                 chosen_base=version.base_model.name if version.base_model else None,
                                 limits=upload_limits(), work_dir=Path(tmp))
        # An archive's version holds the files it unpacked to, so clients download plain files.
        unpacked = {str(p.relative_to(source)): blob_put_file(path=p) for p in sorted(source.rglob("*"))
                    if p.is_file()} if packed and report.ok else None
        result = version_record_validation(version=version, report=report.to_dict(), files=unpacked)
    log.info("validated %s: %s", result, result.state)
    return result.state


@shared_task(name="workers.tasks.requeue_stale_work")
def requeue_stale_work() -> list[int]:
    return versions_requeue_stale(uploaded_after_seconds=settings.REQUEUE_UPLOADED_AFTER_SECONDS)


@worker_ready.connect
def requeue_on_start(sender=None, **kwargs) -> None:
    """A worker coming up picks up what a dead one left behind."""
    try:
        requeue_stale_work.delay()
    except Exception:  # a broker hiccup at start-up must not stop the worker
        log.exception("could not enqueue requeue_stale_work")

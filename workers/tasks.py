"""Celery tasks: thin. Load ids, call the engine on local files, record results through hub services.

Every task is idempotent (a redelivered or duplicated task finds nothing left to do) and
runs with acks_late, so a worker that dies mid-task leaves it to be run again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
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
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import (
    stack_claim,
    stack_progress,
    stack_record_failure,
    stack_record_ready,
    stacks_requeue_stale,
)
from workers.engine.archive import ArchiveLimits, extract_upload, is_archive
from workers.engine.build import MANIFEST_NAME
from workers.engine.build import build_stack as build_engine_stack
from workers.engine.errors import EngineInputError
from workers.engine.recipe import Recipe
from workers.engine.validation import Check, ValidationReport, validate_upload

log = logging.getLogger(__name__)


def upload_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_files=settings.MAX_UPLOAD_FILES,
        max_total_bytes=settings.MAX_UNPACKED_BYTES,
        max_ratio=settings.MAX_COMPRESSION_RATIO,
        max_file_bytes=settings.MAX_UNPACKED_BYTES,
    )


def materialize(files: Iterable[tuple[str, str]], folder: Path) -> list[Path]:
    """(path, sha256) pairs as local files under folder (hard links into a local blob store)."""
    store = get_blob_store()
    return [copy_blob_to(store, sha256, folder / path) for path, sha256 in files]


def materialize_cached(files: Iterable[tuple[str, str]], folder: Path) -> Path:
    """Like materialize, into a folder named by its content and reused by later tasks; it appears whole."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    materialize(files, staging)
    try:
        staging.rename(folder)
    except OSError:  # another task materialized the same content first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def version_files(version: Version) -> list[tuple[str, str]]:
    return [(f.path, f.blob.sha256) for f in version.files.select_related("blob")]


@shared_task(name="workers.tasks.validate_version", acks_late=True)
def validate_version(version_id: int) -> str:
    version = version_claim_for_validation(version_id=version_id, lease_seconds=settings.VALIDATION_LEASE_SECONDS)
    if version is None:
        return "nothing to do"
    base_models = {b.name: b.module_shapes for b in BaseModel.objects.all()}
    settings.WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="validate-", dir=settings.WORK_DIR) as tmp:
        source = Path(tmp) / "raw"
        paths = materialize(version_files(version), source)
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


class ProgressReporter:
    """The engine's progress callback: throttled writes to the build row, each extending its lease."""

    def __init__(self, build: StackBuild, *, every_seconds: float = 0.5) -> None:
        self.build = build
        self.every_seconds = every_seconds
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_seconds or fraction >= 1.0:
            self.last = now
            stack_progress(build=self.build, fraction=fraction, message=message,
                           lease_seconds=settings.STACK_LEASE_SECONDS)


@shared_task(name="workers.tasks.build_stack", acks_late=True, soft_time_limit=settings.STACK_BUILD_TIMEOUT_SECONDS,
             time_limit=settings.STACK_BUILD_TIMEOUT_SECONDS + 60)
def build_stack(build_id: int) -> str:
    """Build one stack artifact: materialize inputs, run the engine, verify while storing, record."""
    build = stack_claim(build_id=build_id, lease_seconds=settings.STACK_LEASE_SECONDS)
    if build is None:
        return "nothing to do"
    recipe = Recipe.from_dict(build.recipe)
    work = settings.WORK_DIR
    out_dir = work / "stacks" / recipe.hash
    try:
        base_files = [(f.path, f.blob.sha256) for f in build.base_model.files.select_related("blob")]
        base_dir = materialize_cached(base_files, work / "models" / content_name(base_files))
        adapter_dirs = {
            f"{m.version.repository.full_name}@{m.version.number}": materialize_cached(
                version_files(m.version), work / "adapters" / m.version.commit_sha)
            for m in build.members.select_related("version__repository__owner")
        }
        report = ProgressReporter(build)
        manifest = build_engine_stack(recipe, base_dir=base_dir, adapter_dirs=adapter_dirs, out_dir=out_dir,
                                      progress=lambda fraction, message: report(0.9 * fraction, message))
        # Verifying: every file goes into the blob store only if it hashes to what the manifest says.
        stack_progress(build=build, fraction=0.9, message="verifying and storing the artifact",
                       lease_seconds=settings.STACK_LEASE_SECONDS, state=BuildState.VERIFYING)
        files = {entry["path"]: blob_put_file(path=out_dir / entry["path"], expected_sha256=entry["sha256"])
                 for entry in manifest["files"]}
        files[MANIFEST_NAME] = blob_put_file(path=out_dir / MANIFEST_NAME)
        stack_record_ready(build=build, manifest=manifest, files=files)
        return "ready"
    except SoftTimeLimitExceeded:
        stack_record_failure(build=build, reason=f"timed out after {settings.STACK_BUILD_TIMEOUT_SECONDS} s")
        return "failed"
    except EngineInputError as exc:
        stack_record_failure(build=build, reason=str(exc))
        return "failed"
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # the blob store holds the artifact now


def content_name(files: list[tuple[str, str]]) -> str:
    """A folder name that changes whenever any file changes."""
    import hashlib

    return hashlib.sha256("".join(f"{p}={s};" for p, s in sorted(files)).encode()).hexdigest()[:24]


@shared_task(name="workers.tasks.requeue_stale_work")
def requeue_stale_work() -> dict[str, list[int]]:
    """Re-enqueue work whose task was lost: runs every minute (beat) and when a worker starts."""
    return {
        "versions": versions_requeue_stale(uploaded_after_seconds=settings.REQUEUE_UPLOADED_AFTER_SECONDS),
        "stacks": stacks_requeue_stale(),
    }


@worker_ready.connect
def requeue_on_start(sender=None, **kwargs) -> None:
    """A worker coming up picks up what a dead one left behind."""
    try:
        requeue_stale_work.delay()
    except Exception:  # a broker hiccup at start-up must not stop the worker
        log.exception("could not enqueue requeue_stale_work")

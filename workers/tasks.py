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
from hub.catalog.models import BaseModel, Blob, RepoKind, Version
from hub.catalog.services import (
    blob_put_file,
    version_claim_for_validation,
    version_record_validation,
    version_renew_validation_lease,
    versions_requeue_stale,
)
from hub.catalog.uploads import upload_sessions_expire
from hub.evals.services import (
    eval_run_claim,
    eval_run_record_failure,
    eval_run_record_result,
    eval_run_renew_lease,
    eval_runs_requeue_stale,
)
from hub.evals.subjects import Subject, run_subject
from hub.evals.suites import suite_from_spec
from hub.leases import lease_heartbeat
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import (
    stack_claim,
    stack_progress,
    stack_record_failure,
    stack_record_ready,
    stack_renew_lease,
    stacks_requeue_stale,
)
from workers.engine.archive import ArchiveLimits, extract_upload, is_archive
from workers.engine.build import MANIFEST_NAME, staging_prefix
from workers.engine.build import build_stack as build_engine_stack
from workers.engine.errors import EngineInputError, VerificationError
from workers.engine.evals import Backend, GGUFBackend, TransformersBackend, run_suite
from workers.engine.gguf_adapter import export_gguf_lora
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


def materialize_shared(kind: str, files: list[tuple[str, str]]) -> Path:
    """A folder of `kind` ("models", "adapters") in the work dir, named by its content: every task
    (validation, builds, evals) that needs the same files reuses it."""
    return materialize_cached(files, settings.WORK_DIR / kind / content_name(files))


def materialize_base(base: BaseModel) -> Path:
    return materialize_shared("models", [(f.path, f.blob.sha256) for f in base.files.select_related("blob")])


def version_files(version: Version) -> list[tuple[str, str]]:
    return [(f.path, f.blob.sha256) for f in version.files.select_related("blob")]


@shared_task(name="workers.tasks.validate_version", acks_late=True)
def validate_version(version_id: int) -> str:
    lease = settings.VALIDATION_LEASE_SECONDS
    version = version_claim_for_validation(version_id=version_id, lease_seconds=lease)
    if version is None:
        return "nothing to do"
    try:
        with lease_heartbeat(lambda: version_renew_validation_lease(version=version, lease_seconds=lease),
                             lease_seconds=lease, name=f"version-{version_id}"):
            return _validate(version)
    except Exception as exc:
        # A bug of ours, not bad input: end visibly (the uploader can upload again) rather than be
        # claimed again and crash on every lease expiry.
        log.exception("validation of %s crashed", version)
        report = ValidationReport(version.repository.kind, [Check(
            "internal", False, f"the hub could not finish validating this upload ({type(exc).__name__}); "
                               "please upload it again later")])
        version_record_validation(version=version, report=report.to_dict())
        raise


def _validate(version: Version) -> str:
    # Named by the version: holding its lease, this task is the only one validating it, so whatever
    # is here is a dead worker's. Cleared before the result is recorded, so nothing outlives the task.
    scratch = settings.WORK_DIR / "validate" / str(version.pk)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        report, files = _check_upload(version, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = version_record_validation(version=version, report=report.to_dict(), files=files)
    log.info("validated %s: %s", result, result.state)
    return result.state


def _check_upload(version: Version, scratch: Path) -> tuple[ValidationReport, dict[str, Blob] | None]:
    """The validation report, and the files the version should hold instead of its upload (None: keep them)."""
    base_models = {b.name: b.module_shapes for b in BaseModel.objects.all()}
    source = scratch / "raw"
    paths = materialize(version_files(version), source)
    packed = len(paths) == 1 and is_archive(paths[0])
    if packed:
        source = scratch / "upload"
        try:
            extract_upload(paths[0], source, limits=upload_limits())
        except EngineInputError as exc:
            return ValidationReport(version.repository.kind,
                                    [Check("archive", False, str(exc), file=exc.file, field=exc.field)]), None
    report = validate_upload(source, version.repository.kind, base_models,
                             chosen_base=version.base_model.name if version.base_model else None,
                             limits=upload_limits(), work_dir=scratch)
    # An archive's version holds the files it unpacked to, so clients download plain files.
    files = {str(p.relative_to(source)): blob_put_file(path=p) for p in sorted(source.rglob("*"))
             if p.is_file()} if packed and report.ok else None
    if report.ok and version.repository.kind == RepoKind.ADAPTER:
        gguf = adapter_gguf(source, report, scratch)
        if gguf is not None:
            stored = files if files is not None else {f.path: f.blob for f in version.files.select_related("blob")}
            files = {**stored, ADAPTER_GGUF: blob_put_file(path=gguf)}
    return report, files


ADAPTER_GGUF = "adapter_model.gguf"


def adapter_gguf(adapter_dir: Path, report: ValidationReport, tmp: Path) -> Path | None:
    """The adapter as a GGUF LoRA llama.cpp loads at run time; a conversion problem is reported, never fatal."""
    base = BaseModel.objects.filter(name=report.stats.get("base_model") or "").first()
    if base is None:
        return None
    base_dir = materialize_base(base)
    target = tmp / ADAPTER_GGUF
    try:
        info = export_gguf_lora(adapter_dir, base_dir, target)
    except EngineInputError as exc:
        report.checks.append(Check("gguf.adapter", False, f"skipped: no llama.cpp adapter could be written: {exc}",
                                   skipped=True))
        return None
    report.checks.append(Check("gguf.adapter", True, f"{ADAPTER_GGUF} written for llama.cpp (alpha "
                                                     f"{info['alpha']:g}, {info['size_bytes']} bytes)", file=ADAPTER_GGUF))
    return target


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
    out_dir = settings.WORK_DIR / "stacks" / build.recipe_hash

    def clear_staging() -> None:
        # Holding the lease, this task is the only one building the recipe: a staging folder here is
        # a dead worker's (never renamed into place, so never served) or this task's own.
        for leftover in out_dir.parent.glob(staging_prefix(out_dir) + "*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def clear_work_copies() -> None:
        shutil.rmtree(out_dir, ignore_errors=True)
        clear_staging()

    def fail(reason: str, details: dict | None = None) -> None:
        clear_work_copies()  # before anyone is told how the build ended
        stack_record_failure(build=build, reason=reason, details=details)

    # A finished `out_dir` a dead worker renamed into place stays: the engine returns it rather than
    # building again, and storing it below re-checks every file's sha256.
    clear_staging()

    try:
        with lease_heartbeat(lambda: stack_renew_lease(build=build, lease_seconds=settings.STACK_LEASE_SECONDS),
                             lease_seconds=settings.STACK_LEASE_SECONDS, name=f"build-{build_id}"):
            # Inside the try: a recipe stored under older rules than this engine's fails the build cleanly.
            recipe = Recipe.from_dict(build.recipe)
            base_dir = materialize_base(build.base_model)
            adapter_dirs = {
                f"{m.version.repository.full_name}@{m.version.number}": materialize_shared(
                    "adapters", version_files(m.version))
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
            clear_work_copies()  # the blob store holds the artifact now
            stack_record_ready(build=build, manifest=manifest, files=files)
            return "ready"
    except SoftTimeLimitExceeded:
        fail(f"timed out after {settings.STACK_BUILD_TIMEOUT_SECONDS:g} s")
        return "failed"
    except EngineInputError as exc:
        fail(str(exc))
        return "failed"
    except VerificationError as exc:
        fail(f"verification failed: {exc}", details=exc.details)
        return "failed"
    except Exception as exc:
        # A bug, not bad input: fail the build visibly instead of retrying it forever on lease expiry.
        log.exception("stack build %s crashed", build.recipe_hash)
        fail(f"internal error ({type(exc).__name__}): {exc}")
        raise


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
        "evals": eval_runs_requeue_stale(queued_after_seconds=settings.EVAL_REQUEUE_QUEUED_AFTER_SECONDS),
    }


@shared_task(name="workers.tasks.expire_upload_sessions")
def expire_upload_sessions() -> int:
    """Delete resumable upload sessions idle past UPLOAD_SESSION_TTL_SECONDS, with their .part files (beat)."""
    return upload_sessions_expire()


@worker_ready.connect
def requeue_on_start(sender=None, **kwargs) -> None:
    """A worker coming up picks up what a dead one left behind."""
    try:
        requeue_stale_work.delay()
    except Exception:  # a broker hiccup at start-up must not stop the worker
        log.exception("could not enqueue requeue_stale_work")


# --- evaluations ------------------------------------------------------------------------------------------------------
# Runs on the `evals` queue (CELERY_TASK_ROUTES).


def eval_backend(subject: Subject) -> Backend:
    """The subject's files, materialized once in the work dir, loaded by the engine backend of its runtime."""
    work = settings.WORK_DIR
    if subject.gguf_file is not None:
        path, sha256 = subject.gguf_file
        return GGUFBackend(materialize_cached([subject.gguf_file], work / "gguf" / sha256[:24]) / path)
    model_dir = materialize_shared("models", list(subject.model_files))
    adapters = [materialize_shared("adapters", list(files)) for files in subject.adapter_files]
    return TransformersBackend(model_dir, adapters=adapters, device=settings.EVAL_DEVICE)


@shared_task(name="workers.tasks.run_eval", acks_late=True, soft_time_limit=settings.EVAL_TIMEOUT_SECONDS,
             time_limit=settings.EVAL_TIMEOUT_SECONDS + 60)
def run_eval(run_id: int) -> str:
    """Evaluate one (suite, subject): rebuild the suite from the run's spec, load the subject, run the engine."""
    run = eval_run_claim(run_id=run_id, lease_seconds=settings.EVAL_LEASE_SECONDS)
    if run is None:
        return "nothing to do"
    try:
        with lease_heartbeat(lambda: eval_run_renew_lease(run=run, lease_seconds=settings.EVAL_LEASE_SECONDS),
                             lease_seconds=settings.EVAL_LEASE_SECONDS, name=f"eval-{run_id}"):
            suite = suite_from_spec(run.suite, run.suite_spec)
            if suite.version != run.suite_version:
                raise EngineInputError(f"this worker builds {run.suite} version {suite.version}, not "
                                       f"{run.suite_version} (another engine or corpus)", field="suite_version")
            result = run_suite(suite, eval_backend(run_subject(run)), seed=settings.EVAL_SEED)
    except SoftTimeLimitExceeded:
        eval_run_record_failure(run=run, reason=f"timed out after {settings.EVAL_TIMEOUT_SECONDS} s")
        return "failed"
    except Exception as exc:  # any failure to load or run the model is the run's result, with its reason
        log.exception("eval run %s failed", run_id)
        eval_run_record_failure(run=run, reason=f"{type(exc).__name__}: {exc}")
        return "failed"
    return "finished" if eval_run_record_result(run=run, result=result) else "superseded"

"""Writes for training jobs: validate a request, share one job per hash, record progress, results and failures.

A request is checked completely before anything is queued, and every refusal names its field: the dataset and
its version, the split, whether the base's tokenizer can format its rows, the LoRA target modules against the
base's module shapes, and the per-user limits (NOMOAT_TRAINING_*).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from hub.accounts.models import User
from hub.catalog.blobstore import get_blob_store
from hub.catalog.models import NAME_VALIDATOR, BaseModel, RepoKind, Repository, Version
from hub.catalog.selectors import published_dataset_version
from hub.catalog.services import blob_put_file, repository_get_or_create, version_create
from hub.core.errors import ServiceError
from hub.core.leases import claim_with_lease, count_attempt, lease_expired, lease_until, renew_lease
from hub.core.params import ascii_int
from hub.training.models import ACTIVE_STATES, JobState, TrainingJob
from hub.training.signals import training_queued
from workers.engine.datasets import EVAL_SPLITS
from workers.engine.errors import EngineInputError, quote
from workers.engine.training import SPEC_KEYS, TrainingSpec, library_versions

REQUEST_KEYS = ("base_model", "dataset", "split", "eval_split", "into")
LOSS_POINTS = 400  # a job keeps at most this many points of its loss curve
HASH_FILES = (".safetensors",)


class TrainingRequestError(ServiceError):
    """A training request the hub refuses, naming the field (`lora.rank`, `dataset`) and what was expected."""

    code = "invalid_training"

    def __init__(self, message: str, *, field: str = "", code: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, code=code, status=status,
                         details={"field": field})
        self.field = field


def _dataset_version(ref: object) -> Version:
    """`owner/name@N`, or `owner/name` for the newest published version. Unpublished versions answer as missing."""
    if not isinstance(ref, str) or "/" not in ref:
        raise TrainingRequestError(f'expected "owner/name" or "owner/name@version", got {quote(ref)}', field="dataset")
    _, _, pinned = ref.partition("@")
    if pinned and ascii_int(pinned) is None:
        raise TrainingRequestError(f"version must be a whole number, got {quote(pinned)}", field="dataset")
    version = published_dataset_version(ref)
    if version is None:
        raise TrainingRequestError(f"no published dataset {ref} on this hub", field="dataset")
    return version


def _split_files(dataset: Version, split: str, field: str) -> list[str]:
    splits: dict[str, list[str]] = (dataset.stats or {}).get("splits") or {}
    if split not in splits:
        raise TrainingRequestError(f"{dataset} has no split {split!r} (it has {', '.join(sorted(splits)) or 'none'})",
                                   field=field)
    return list(splits[split])


def _base_has_chat_template(base: BaseModel) -> bool:
    """What the base's tokenizer will render chat rows with: `chat_template` in tokenizer_config.json, or a
    chat_template.jinja file (read from the blob store: the web process loads no tokenizer)."""
    files = {f.path: f.blob.sha256 for f in base.files.select_related("blob")}
    if "chat_template.jinja" in files:
        return True
    if "tokenizer_config.json" not in files:
        return False
    config = json.loads(b"".join(get_blob_store().read_range(files["tokenizer_config.json"])))
    return bool(config.get("chat_template"))


def _check_rows(dataset: Version, files: list[str], base: BaseModel, field: str) -> int:
    """The rows of the split's files, refusing formats the base's tokenizer cannot format."""
    stats = (dataset.stats or {}).get("files") or {}
    formats = {name: (stats.get(name) or {}).get("format") for name in files}
    chat = [name for name, shape in formats.items() if shape == "chat"]
    if chat and not _base_has_chat_template(base):
        raise TrainingRequestError(f"{chat[0]} holds chat rows, and {base.name}'s tokenizer has no chat template to "
                                   "format them; use instruction rows (prompt, response) or another base model",
                                   field=field)
    return sum(int((stats.get(name) or {}).get("rows") or 0) for name in files)


def _check_modules(spec: TrainingSpec, base: BaseModel) -> None:
    present = {module.rsplit(".", 1)[-1] for module in base.module_shapes}
    missing = [name for name in spec.target_modules if name not in present]
    if missing:
        raise TrainingRequestError(f"{base.name} has no module {', '.join(missing)}; it has "
                                   f"{', '.join(sorted(present))}", field="lora.target_modules")


def _check_limits(user: User, spec: TrainingSpec, rows: int) -> None:
    steps = spec.total_steps(max(rows, 1))
    for value, limit, field, what in (
        (steps, settings.TRAINING_MAX_STEPS, "epochs" if spec.epochs else "steps", "steps"),
        (spec.max_seq_len, settings.TRAINING_MAX_SEQ_LEN, "max_seq_len", "tokens per row"),
        (spec.rank, settings.TRAINING_MAX_RANK, "lora.rank", "rank"),
        (spec.batch_size, settings.TRAINING_MAX_BATCH_SIZE, "batch_size", "rows per batch"),
    ):
        if value > limit:
            raise TrainingRequestError(f"{value} {what} is over this hub's limit of {limit}", field=field,
                                       code="training_limit")
    running = TrainingJob.objects.filter(owner=user, state__in=ACTIVE_STATES).count()
    if running >= settings.TRAINING_MAX_CONCURRENT_JOBS:
        raise TrainingRequestError(f"you have {running} training jobs queued or running; this hub allows "
                                   f"{settings.TRAINING_MAX_CONCURRENT_JOBS} at a time", code="training_limit",
                                   status=429)


def _into(user: User, into: object, base: BaseModel) -> str:
    if not isinstance(into, str) or into.count("/") != 1:
        raise TrainingRequestError(f'expected the adapter repository as "owner/name", got {quote(into)}', field="into")
    owner, name = into.split("/")
    if owner != user.username:
        raise TrainingRequestError(f"you can train only into your own namespace ({user.username}/…)", field="into",
                                   code="permission_denied", status=403)
    if not NAME_VALIDATOR.regex.match(name):
        raise TrainingRequestError(f"{NAME_VALIDATOR.message}, got {quote(name)}", field="into")
    existing = Repository.objects.filter(owner=user, name=name).select_related("base_model").first()
    if existing is not None and existing.kind != RepoKind.ADAPTER:
        raise TrainingRequestError(f"{into} is a {existing.kind}, not an adapter repository", field="into")
    if existing is not None and existing.base_model_id not in (None, base.pk):
        raise TrainingRequestError(f"{into} holds adapters for {existing.base_model.name}, not {base.name}",
                                   field="into")
    return into


def training_job_hash(*, spec: TrainingSpec, base: BaseModel, dataset: Version, split: str, eval_split: str,
                      into: str) -> str:
    """sha256 of the canonical spec with the content hashes of the data and the base and the library versions:
    what decides the adapter's bytes (and where it goes)."""
    canonical = {
        "spec": spec.to_dict(), "into": into, "split": split, "eval_split": eval_split,
        "dataset": {"ref": str(dataset), "sha256": {f.path: f.blob.sha256 for f in dataset.files.select_related("blob")}},
        "base": {"name": base.name, "sha256": {f.path: f.blob.sha256 for f in base.files.select_related("blob")
                                               if f.path.endswith(HASH_FILES)}},
        "libraries": library_versions(),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def training_request(*, user: User, request: Mapping[str, Any]) -> tuple[TrainingJob, bool]:
    """The job for this request: an existing identical one (returned, a failed or cancelled one queued again), or a
    new one queued. Returns (job, created)."""
    if not isinstance(request, Mapping):
        raise TrainingRequestError("a training request must be a JSON object")
    unknown = sorted(str(key) for key in request if key not in (*REQUEST_KEYS, *SPEC_KEYS))
    if unknown:
        raise TrainingRequestError(f"unknown field; expected {', '.join((*REQUEST_KEYS, *SPEC_KEYS))}",
                                   field=unknown[0])
    base_name = request.get("base_model")
    base = BaseModel.objects.filter(name=base_name).first() if isinstance(base_name, str) else None
    if base is None:
        raise TrainingRequestError(f"no base model {quote(request.get('base_model'))} on this hub; see "
                                   "/api/v1/base-models", field="base_model")
    into = _into(user, request.get("into"), base)
    dataset = _dataset_version(request.get("dataset"))
    split = request.get("split", "train")
    if not isinstance(split, str):
        raise TrainingRequestError(f"must be a split name, got {quote(split)}", field="split")
    train_files = _split_files(dataset, split, "split")
    splits = (dataset.stats or {}).get("splits") or {}
    eval_split = request.get("eval_split", next((s for s in EVAL_SPLITS if s in splits and s != split), ""))
    if not isinstance(eval_split, str):
        raise TrainingRequestError(f"must be a split name, got {quote(eval_split)}", field="eval_split")
    if eval_split:
        _check_rows(dataset, _split_files(dataset, eval_split, "eval_split"), base, "eval_split")
    try:
        spec = TrainingSpec.from_dict({key: request[key] for key in SPEC_KEYS if key in request})
    except EngineInputError as exc:
        raise TrainingRequestError(str(exc).split(": ", 1)[-1], field=exc.field) from None
    rows = _check_rows(dataset, train_files, base, "split")
    _check_modules(spec, base)
    spec_hash = training_job_hash(spec=spec, base=base, dataset=dataset, split=split, eval_split=eval_split, into=into)
    existing = TrainingJob.objects.filter(spec_hash=spec_hash).first()
    if existing is not None:
        return _again(existing), False
    _check_limits(user, spec, rows)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(
                spec_hash=spec_hash, owner=user, request=dict(request), spec=spec.to_dict(), base_model=base,
                dataset_version=dataset, split=split, eval_split=eval_split, into=into,
                total_steps=spec.total_steps(max(rows, 1)),
            )
            training_queued.send(sender=TrainingJob, job_id=job.pk)
            return job, True
    except IntegrityError:  # the same request at the same moment: share its job
        return _again(TrainingJob.objects.get(spec_hash=spec_hash)), False


def _again(job: TrainingJob) -> TrainingJob:
    """An identical request for a job that failed or was cancelled trains it again (from its checkpoint, if any)."""
    if TrainingJob.objects.filter(pk=job.pk, state__in=[JobState.FAILED, JobState.CANCELLED]).update(
        state=JobState.QUEUED, failure_reason="", cancel_requested=False, lease_expires_at=None, finished_at=None,
    ):
        training_queued.send(sender=TrainingJob, job_id=job.pk)
    job.refresh_from_db()
    return job


def training_cancel(*, user: User, job: TrainingJob) -> TrainingJob:
    """A queued job is cancelled at once; a running one at its next step (its worker sees the request)."""
    if job.owner_id != user.pk and not getattr(user, "is_moderator", False):
        raise ServiceError(f"training job {job.pk} not found", code="not_found", status=404)
    if TrainingJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
        state=JobState.CANCELLED, finished_at=timezone.now(), lease_expires_at=None, failure_reason="cancelled"
    ):
        job.refresh_from_db()
        return job
    if not TrainingJob.objects.filter(pk=job.pk, state=JobState.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise ServiceError(f"training job {job.pk} is {job.state}; only a queued or running job can be cancelled",
                           code="not_cancellable", status=409)
    job.refresh_from_db()
    return job


def training_claim(*, job_id: int, lease_seconds: int) -> TrainingJob | None:
    claimable = Q(state=JobState.QUEUED) | (Q(state=JobState.RUNNING) & lease_expired())
    if not claim_with_lease(TrainingJob, job_id, claimable, lease_seconds=lease_seconds, state=JobState.RUNNING,
                            attempts=count_attempt()):
        return None
    TrainingJob.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=timezone.now())
    return TrainingJob.objects.select_related("base_model", "dataset_version__repository__owner", "owner").get(pk=job_id)


def _held(job: TrainingJob) -> Q:
    """The job is still this attempt's: running, and not re-claimed by another worker after a lapse."""
    return Q(state=JobState.RUNNING, attempts=job.attempts)


def training_renew_lease(*, job: TrainingJob, lease_seconds: int) -> bool:
    return renew_lease(TrainingJob, job.pk, _held(job), lease_seconds=lease_seconds)


def training_cancel_requested(*, job: TrainingJob) -> bool:
    """Whether the job's owner asked to stop it (or it is no longer this attempt's to train)."""
    return not TrainingJob.objects.filter(_held(job), cancel_requested=False, pk=job.pk).exists()


def loss_curve(history: list[tuple[int, float]], points: int = LOSS_POINTS) -> list[list[float]]:
    """At most `points` [step, mean loss] pairs: buckets of consecutive steps averaged, the last step kept."""
    if len(history) <= points:
        return [[step, loss] for step, loss in history]
    size = math.ceil(len(history) / points)
    curve = []
    for start in range(0, len(history), size):
        bucket = history[start:start + size]
        curve.append([bucket[-1][0], round(sum(loss for _, loss in bucket) / len(bucket), 6)])
    return curve


def training_record_progress(*, job: TrainingJob, step: int, loss: float, tokens_per_second: float,
                             eta_seconds: float, history: list[tuple[int, float]], lease_seconds: int) -> None:
    """Progress and the loss curve, and a longer lease: a job that reports progress is alive."""
    TrainingJob.objects.filter(_held(job), pk=job.pk).update(
        step=step, loss=loss if math.isfinite(loss) else None, tokens_per_second=round(tokens_per_second, 2),
        eta_seconds=round(eta_seconds, 1), loss_history=loss_curve(history), lease_expires_at=lease_until(lease_seconds),
    )


def training_record_start(*, job: TrainingJob, resumed_from_step: int, total_steps: int) -> None:
    TrainingJob.objects.filter(_held(job), pk=job.pk).update(resumed_from_step=resumed_from_step, step=resumed_from_step,
                                                             total_steps=total_steps)


def training_record_checkpoint(*, job: TrainingJob, step: int) -> None:
    TrainingJob.objects.filter(_held(job), pk=job.pk).update(checkpoint_step=step)


def training_record_cancelled(*, job: TrainingJob) -> bool:
    """The attempt stopped because its owner asked; False when it stopped because another worker had taken the job
    over (its lease lapsed), which then is that worker's to finish."""
    return bool(TrainingJob.objects.filter(_held(job), pk=job.pk, cancel_requested=True).update(
        state=JobState.CANCELLED, failure_reason="cancelled by its owner", finished_at=timezone.now(),
        lease_expires_at=None, eta_seconds=None))


def training_record_failure(*, job: TrainingJob, reason: str) -> None:
    TrainingJob.objects.filter(_held(job), pk=job.pk).update(
        state=JobState.FAILED, failure_reason=reason[:2000], finished_at=timezone.now(), lease_expires_at=None,
        eta_seconds=None)


def training_publish(*, job: TrainingJob, adapter_dir: Path, result: Mapping[str, Any]) -> Version | None:
    """The trained adapter becomes a new version of the target repository through the normal upload path
    (validation, moderation, evaluation follow). All or nothing, and only while this attempt still holds the job:
    a worker whose lease lapsed never publishes. Returns the version, or None when the job was not ours any more."""
    blobs = {path.name: blob_put_file(path=path) for path in sorted(adapter_dir.iterdir()) if path.is_file()}
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().filter(_held(job), pk=job.pk).first()
        if locked is None:
            return None
        name = job.into.split("/")[1]
        repository = repository_get_or_create(kind=RepoKind.ADAPTER, owner=job.owner, name=name,
                                              base_model=job.base_model)
        version = version_create(repository=repository, files=blobs, created_by=job.owner, base_model=job.base_model)
        TrainingJob.objects.filter(pk=job.pk).update(
            state=JobState.FINISHED, version=version, result=dict(result), step=result.get("steps", job.step),
            finished_at=timezone.now(), lease_expires_at=None, eta_seconds=0.0, failure_reason="")
    return version


def trainings_requeue_stale() -> list[int]:
    """Jobs whose worker died (lease ran out) are trained again from their last checkpoint; queued jobs whose
    message was lost (still queued after a requeue interval without an attempt) are sent again."""
    lost = Q(state=JobState.QUEUED, created_at__lt=timezone.now() - timedelta(
        seconds=settings.REQUEUE_UPLOADED_AFTER_SECONDS))
    ids = list(TrainingJob.objects.filter((Q(state=JobState.RUNNING) & lease_expired()) | lost)
               .values_list("pk", flat=True))
    for job_id in ids:
        training_queued.send(sender=TrainingJob, job_id=job_id)
    return ids

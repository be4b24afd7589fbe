"""Writes for data reports and contamination checks: schedule (once per content), claim, record, requeue.

Scheduling is idempotent: a report is one row per (content hash, report version) and a check one row per
(training version, eval version, split, method version); a new row is announced with a "queued" signal, and the
tasks module enqueues it when the transaction commits.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hub.catalog.models import BaseModel, RepoKind, Repository, Version, VersionState
from hub.core.leases import claim_with_lease, count_attempt, lease_expired, renew_lease
from hub.core.params import ascii_int
from hub.datareports.models import Contamination, DataReport, JobState
from hub.datareports.signals import contamination_queued, data_report_queued
from workers.engine.contamination import CONTAMINATION_VERSION
from workers.engine.datareport import REPORT_VERSION
from workers.engine.datasets import DATA_SUFFIXES, EVAL_SPLITS

TOKENIZER_FILE = "tokenizer.json"
DEFAULT_CONTEXT_TOKENS = 2048  # a base model whose config names no context length


def dataset_splits(version: Version) -> dict[str, list[str]]:
    """Split -> data files, as validation resolved them (every data file as `unsplit` when it recorded none)."""
    splits = (version.stats or {}).get("splits")
    if isinstance(splits, dict) and splits:
        return {str(split): list(files) for split, files in splits.items()}
    return {"unsplit": [path for path, _ in data_files(version)]}


def data_files(version: Version) -> list[tuple[str, str]]:
    return [(f.path, f.blob.sha256) for f in version.files.select_related("blob").order_by("path")
            if f.path.lower().endswith(DATA_SUFFIXES)]


def token_budgets() -> list[dict[str, Any]]:
    """Every base model on the hub that ships a tokenizer.json, with its context length."""
    budgets = []
    for base in BaseModel.objects.prefetch_related("files__blob").order_by("name"):
        tokenizer = next((f for f in base.files.all() if f.path == TOKENIZER_FILE), None)
        if tokenizer is None:
            continue
        context = ascii_int(str((base.config or {}).get("max_position_embeddings", ""))) or DEFAULT_CONTEXT_TOKENS
        budgets.append({"name": base.name, "tokenizer": tokenizer.blob.sha256, "max_tokens": context})
    return budgets


def data_report_schedule(*, version: Version) -> DataReport | None:
    """The report of a dataset version's content: the existing one (shared), or a new one queued on commit."""
    if version.repository.kind != RepoKind.DATASET:
        return None
    spec = {"files": data_files(version), "splits": dataset_splits(version), "budgets": token_budgets()}
    content_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    report, created = DataReport.objects.get_or_create(content_hash=content_hash, report_version=REPORT_VERSION,
                                                       defaults={"spec": spec})
    report.versions.add(version)
    if created:
        data_report_queued.send(sender=DataReport, report_id=report.pk)
    return report


def data_report_claim(*, report_id: int, lease_seconds: int) -> DataReport | None:
    claimable = Q(state=JobState.QUEUED) | (Q(state=JobState.RUNNING) & lease_expired())
    if not claim_with_lease(DataReport, report_id, claimable, lease_seconds=lease_seconds, state=JobState.RUNNING,
                            attempts=count_attempt()):
        return None
    return DataReport.objects.get(pk=report_id)


def data_report_renew_lease(*, report: DataReport, lease_seconds: int) -> bool:
    return renew_lease(DataReport, report.pk, Q(state=JobState.RUNNING), lease_seconds=lease_seconds)


def data_report_record(*, report: DataReport, result: dict[str, Any] | None, failure: str = "") -> bool:
    """Store a finished report (or why it failed); False when another worker finished it first."""
    state = JobState.FAILED if result is None else JobState.FINISHED
    return bool(DataReport.objects.filter(pk=report.pk, state=JobState.RUNNING).update(
        state=state, report=result or {}, failure_reason=failure, finished_at=timezone.now(), lease_expires_at=None))


def _requeue(model: type[DataReport] | type[Contamination], queued_after_seconds: int) -> list[int]:
    stale = Q(state=JobState.QUEUED, enqueued_at__lt=timezone.now() - timedelta(seconds=queued_after_seconds)) | (
        Q(state=JobState.RUNNING) & lease_expired())
    ids = list(model.objects.filter(stale).values_list("pk", flat=True))
    model.objects.filter(pk__in=ids, state=JobState.QUEUED).update(enqueued_at=timezone.now())
    for pk in ids:
        if model is DataReport:
            data_report_queued.send(sender=DataReport, report_id=pk)
        else:
            contamination_queued.send(sender=Contamination, check_id=pk)
    return ids


def jobs_requeue_stale(*, queued_after_seconds: int) -> list[int]:
    """Reports and checks a dead worker or a lost message left: sent again."""
    return _requeue(DataReport, queued_after_seconds) + _requeue(Contamination, queued_after_seconds)


# --- contamination ---------------------------------------------------------------------------------------------------


def _latest_published(repository_ids: Any) -> list[Version]:
    versions = (Version.objects.filter(repository__in=repository_ids, repository__kind=RepoKind.DATASET,
                                       state=VersionState.PUBLISHED).order_by("repository_id", "-number"))
    latest: dict[int, Version] = {}
    for version in versions:
        latest.setdefault(version.repository_id, version)
    return list(latest.values())


def _named_eval_datasets() -> list[Version]:
    """Dataset versions that published adapters name as `eval_dataset` (owner/name or owner/name@N)."""
    found = []
    for ref in {v.card.get("eval_dataset") for v in Version.objects.filter(
            repository__kind=RepoKind.ADAPTER, state=VersionState.PUBLISHED, card__has_key="eval_dataset")}:
        if not isinstance(ref, str) or "/" not in ref:
            continue
        name, _, pinned = ref.strip().partition("@")
        owner, _, repo = name.partition("/")
        versions = Version.objects.filter(repository__kind=RepoKind.DATASET, repository__owner__username=owner,
                                          repository__name=repo, state=VersionState.PUBLISHED)
        if pinned:
            versions = versions.filter(number=ascii_int(pinned) or 0)
        version = versions.order_by("-number").first()
        if version is not None:
            found.append(version)
    return found


def eval_sets() -> list[tuple[Version, str]]:
    """(dataset version, split) of every eval set on the hub: each published dataset's held-out splits, and the
    datasets adapters name as `eval_dataset` (all their files when they have no held-out split)."""
    sets: dict[tuple[int, str], tuple[Version, str]] = {}
    published = Repository.objects.filter(kind=RepoKind.DATASET)
    for version in _latest_published(published):
        for split in dataset_splits(version):
            if split in EVAL_SPLITS:
                sets[(version.pk, split)] = (version, split)
    for version in _named_eval_datasets():
        held_out = [s for s in dataset_splits(version) if s in EVAL_SPLITS]
        for split in held_out or [""]:
            sets.setdefault((version.pk, split), (version, split))
    return list(sets.values())


def training_files(version: Version) -> list[tuple[str, str]]:
    """The files a trainer learns from: every split but the held-out ones."""
    splits = dataset_splits(version)
    wanted = {name for split, names in splits.items() if split not in EVAL_SPLITS for name in names}
    return [(path, sha) for path, sha in data_files(version) if path in wanted]


def _eval_files(version: Version, split: str) -> list[tuple[str, str]]:
    wanted = set(dataset_splits(version).get(split, [])) if split else None
    return [(path, sha) for path, sha in data_files(version) if wanted is None or path in wanted]


def contamination_schedule(*, train: Version, eval_version: Version, split: str) -> Contamination | None:
    """One check of a training dataset against an eval set (shared once made); None when `train` has nothing
    a trainer would learn from, or the eval set no rows."""
    train_files, eval_files = training_files(train), _eval_files(eval_version, split)
    if not train_files or not eval_files:
        return None
    check, created = Contamination.objects.get_or_create(
        train_version=train, eval_version=eval_version, eval_split=split, method_version=CONTAMINATION_VERSION,
        defaults={"spec": {"train_files": train_files, "eval_files": eval_files}})
    if created:
        contamination_queued.send(sender=Contamination, check_id=check.pk)
    return check


def _training_candidates() -> list[Version]:
    """The latest published version of every dataset an adapter's lineage names."""
    return _latest_published(Repository.objects.filter(kind=RepoKind.DATASET, trained_versions__isnull=False))


@transaction.atomic
def contamination_schedule_for(*, version: Version) -> list[Contamination]:
    """The checks a newly published version needs: a dataset against every eval set and, when it is one, every
    training dataset against it; an adapter's training datasets against every eval set."""
    sets = eval_sets()
    if version.repository.kind == RepoKind.ADAPTER:
        trains = _latest_published(version.training_datasets.all())
        pairs = [(train, e, split) for train in trains for e, split in sets]
    else:
        own = [(e, split) for e, split in sets if e.pk == version.pk]
        pairs = [(version, e, split) for e, split in sets]
        pairs += [(train, e, split) for train in _training_candidates() for e, split in own if train.pk != version.pk]
    checks = [contamination_schedule(train=train, eval_version=e, split=split) for train, e, split in pairs]
    return [c for c in checks if c is not None]


def contamination_claim(*, check_id: int, lease_seconds: int) -> Contamination | None:
    claimable = Q(state=JobState.QUEUED) | (Q(state=JobState.RUNNING) & lease_expired())
    if not claim_with_lease(Contamination, check_id, claimable, lease_seconds=lease_seconds, state=JobState.RUNNING,
                            attempts=count_attempt()):
        return None
    return Contamination.objects.get(pk=check_id)


def contamination_renew_lease(*, check: Contamination, lease_seconds: int) -> bool:
    return renew_lease(Contamination, check.pk, Q(state=JobState.RUNNING), lease_seconds=lease_seconds)


def contamination_record(*, check: Contamination, result: dict[str, Any] | None, failure: str = "") -> bool:
    """Store a finished check's figures (or why it failed); False when another worker finished it first."""
    figures = result or {}
    return bool(Contamination.objects.filter(pk=check.pk, state=JobState.RUNNING).update(
        state=JobState.FAILED if result is None else JobState.FINISHED, failure_reason=failure,
        finished_at=timezone.now(), lease_expires_at=None, **figures))

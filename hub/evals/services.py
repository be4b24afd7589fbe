"""Writes for evals: schedule runs (once per suite version and subject), claim them, record results, re-run.

Scheduling is idempotent: every (suite, suite version, subject hash) is one row, so publishing a
second adapter for a base model finds the base's runs already there and enqueues only its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from hub.accounts.models import User
from hub.audit.services import audit_record
from hub.catalog.models import BaseModel, RepoKind, Repository, Version, VersionState
from hub.core.errors import ServiceError
from hub.core.leases import claim_with_lease, count_attempt, lease_expired, renew_lease
from hub.evals.models import EvalRun, RunState, Runtime, SubjectKind
from hub.evals.selectors.scores import latest_published_versions, retention_by_version
from hub.evals.signals import eval_run_queued
from hub.evals.subjects import Subject, adapter_subject, base_subjects, content_digest, stack_subjects
from hub.evals.suites import UNRESOLVED, SuiteRef, general_suite_ref, task_suite_ref
from hub.provenance.signing import stack_attest, version_attest
from hub.stacks.models import StackBuild
from workers.engine.evals import GENERAL_PERPLEXITY_ID
from workers.engine.signing import EVALUATION
from workers.engine.validation import ADAPTER_WEIGHTS


class RerunRefused(ServiceError):
    """A run that is being worked on right now cannot be re-run."""

    code = "run_busy"
    status = 409


def eval_run_ensure(*, suite: SuiteRef, subject: Subject) -> EvalRun:
    """The run of `suite` on `subject`: the existing one (shared), or a new one enqueued on commit.

    A suite that could not be built (`suite.error`) is recorded as a failed run with that reason.
    """
    failed = bool(suite.error)
    run, created = EvalRun.objects.get_or_create(
        suite=suite.id, suite_version=suite.version, subject_hash=subject.hash,
        defaults={
            "suite_kind": suite.kind, "suite_spec": suite.spec, "dataset_version": suite.dataset_version,
            "subject_kind": subject.kind, "runtime": subject.runtime, "base_model": subject.base_model,
            "version": subject.version, "build": subject.build, "artifact_path": subject.artifact_path,
            "hashes": subject.hashes,
            **({"state": RunState.FAILED, "failure_reason": suite.error, "finished_at": timezone.now()}
               if failed else {}),
        },
    )
    if created and not failed:
        eval_run_queued.send(sender=EvalRun, run_id=run.pk)
    return run


def _ensure_all(jobs: list[tuple[SuiteRef, Subject]]) -> list[EvalRun]:
    seen: set[tuple[str, str, str]] = set()
    runs = []
    for suite, subject in jobs:
        if (suite.id, suite.version, subject.hash) not in seen:
            seen.add((suite.id, suite.version, subject.hash))
            runs.append(eval_run_ensure(suite=suite, subject=subject))
    return runs


def _prefetched_version(version: Version) -> Version:
    return (Version.objects.select_related("repository__owner", "base_model")
            .prefetch_related("files__blob", "base_model__files__blob").get(pk=version.pk))


def evals_schedule_version(*, version: Version) -> list[EvalRun]:
    """A published adapter: general perplexity (and its declared task) on it, on its base, on the base's GGUFs."""
    version = _prefetched_version(version)
    if version.repository.kind != RepoKind.ADAPTER or version.base_model is None or not version.is_published:
        return []
    general, task = general_suite_ref(), task_suite_ref(version)
    adapter, bases = adapter_subject(version), base_subjects(version.base_model)
    suites = [general] + ([task] if task and not task.error else [])
    jobs = [(suite, subject) for suite in suites for subject in [*bases, adapter]]
    if task and task.error:
        jobs.append((task, adapter))
    runs = _ensure_all(jobs)
    # Runs shared with an identical upload may have finished already: its score is known now, and its attestations
    # belong in this version's files too.
    for run in runs:
        if run.state == RunState.FINISHED and run.subject_hash == adapter.hash:
            _attest_on(version, run, _stored_result(run))
    repository_scores_refresh(base_model=version.base_model, repository_ids=[version.repository_id])
    return runs


def evals_schedule_stack(*, build: StackBuild) -> list[EvalRun]:
    """A built stack: general perplexity on each of its artifacts (HF and GGUF), and every member's task on
    the stack, on the member alone and on the base: the three scores its stacking score needs."""
    build = (StackBuild.objects.select_related("base_model")
             .prefetch_related("files__blob", "base_model__files__blob").get(pk=build.pk))
    general, stack, base = general_suite_ref(), stack_subjects(build), base_subjects(build.base_model)[0]
    jobs = [(general, subject) for subject in [base, *stack]]
    for member in build.members.select_related("version"):
        version = _prefetched_version(member.version)
        task = task_suite_ref(version)
        if task and not task.error:
            jobs += [(task, subject) for subject in [base, adapter_subject(version), *stack]]
    return _ensure_all(jobs)


def eval_run_claim(*, run_id: int, lease_seconds: int) -> EvalRun | None:
    """Take a run: from `queued`, or from `running` whose worker died (lease ran out)."""
    claimable = Q(state=RunState.QUEUED) | (Q(state=RunState.RUNNING) & lease_expired())
    if not claim_with_lease(EvalRun, run_id, claimable, lease_seconds=lease_seconds, state=RunState.RUNNING,
                            started_at=timezone.now(), attempts=count_attempt()):
        return None
    return EvalRun.objects.select_related("base_model", "version", "build").get(pk=run_id)


def _held(run: EvalRun) -> QuerySet[EvalRun]:
    """The run as long as the caller's claim holds (a re-claimed run belongs to its new worker)."""
    return EvalRun.objects.filter(pk=run.pk, state=RunState.RUNNING, attempts=run.attempts)


def eval_run_renew_lease(*, run: EvalRun, lease_seconds: int) -> bool:
    """The evaluating worker's heartbeat, for as long as its claim holds."""
    return renew_lease(EvalRun, run.pk, Q(state=RunState.RUNNING, attempts=run.attempts), lease_seconds=lease_seconds)


def eval_run_record_result(*, run: EvalRun, result: dict[str, Any]) -> bool:
    """Store a finished result from the engine (`run_suite`'s dict); False when the claim was lost."""
    if (result["suite"]["id"], result["suite"]["version"]) != (run.suite, run.suite_version):
        raise ValueError(f"a result of {result['suite']['id']}@{result['suite']['version']} is not one of {run}")
    with transaction.atomic():
        recorded = _held(run).update(
            state=RunState.FINISHED, failure_reason="", finished_at=timezone.now(), lease_expires_at=None,
            seed=result["seed"], metrics=result["metrics"], suite_settings=result["settings"],
            suite_params=result["suite"], model=result["model"], library_versions=result["versions"],
            records=result["records"], seconds=result["timing"]["seconds"],
        )
        if recorded:  # in the same transaction: a result is never recorded without its attestation, nor the reverse
            _attest(run, result)
        if recorded and run.suite == GENERAL_PERPLEXITY_ID and run.runtime == Runtime.TRANSFORMERS:
            if run.subject_kind == SubjectKind.BASE:
                repository_scores_refresh(base_model=run.base_model)
            elif run.subject_kind == SubjectKind.ADAPTER:
                repository_scores_refresh(base_model=run.base_model,
                                          repository_ids=[v.repository_id for v in _versions_sharing(run)])
    return bool(recorded)


def _versions_sharing(run: EvalRun) -> list[Version]:
    """The adapter versions a run scores: the one that asked for it and every published one with the same adapter
    files on the same base (a run is keyed by content, so an identical upload that came while it ran shares it)."""
    weights = run.version.files.filter(path=ADAPTER_WEIGHTS).values("blob_id")
    candidates = (Version.objects.filter(state=VersionState.PUBLISHED, base_model=run.base_model,
                                         repository__kind=RepoKind.ADAPTER, files__path=ADAPTER_WEIGHTS,
                                         files__blob_id__in=weights)
                  .exclude(pk=run.version_id).select_related("repository__owner", "base_model")
                  .prefetch_related("files__blob", "base_model__files__blob"))
    return [run.version, *(v for v in candidates if adapter_subject(v).hash == run.subject_hash)]


def _stored_result(run: EvalRun) -> dict[str, Any]:
    """A finished run's result in the shape a worker records it (what an attestation is made of)."""
    return {"suite": run.suite_params, "versions": run.library_versions, "seed": run.seed,
            "settings": run.suite_settings, "metrics": run.metrics}


def _attest(run: EvalRun, result: dict[str, Any]) -> None:
    """The signed statement of an adapter version's or a stack's result, beside its model.sig (one per suite, and per
    artifact of a stack). Base models carry no signature to attest beside."""
    if run.subject_kind == SubjectKind.ADAPTER and run.version_id:
        for version in _versions_sharing(run):
            _attest_on(version, run, result)
    elif run.subject_kind == SubjectKind.STACK and run.build_id:
        on = run.artifact_path or run.runtime
        stack_attest(build=run.build, name=f"eval-{run.suite}-on-{on}", predicate_type=EVALUATION,
                     predicate=evaluation_predicate(run, result))


def _attest_on(version: Version, run: EvalRun, result: dict[str, Any]) -> None:
    version_attest(version=version, name=f"eval-{run.suite}", predicate_type=EVALUATION,
                   predicate=evaluation_predicate(run, result))


def evaluation_predicate(run: EvalRun, result: dict[str, Any]) -> dict[str, Any]:
    """What an evaluation attestation says: the suite (with its dataset's files and content hash), what was evaluated
    (every input's sha256), the engine and library versions and the metrics. Nothing of when or where it ran, so the
    same result attests the same statement."""
    spec = run.suite_spec
    if "files" in spec:
        files = [(path, sha256) for path, sha256 in spec["files"]]
        data: dict[str, Any] = {"ref": spec.get("dataset"), "split": spec.get("split"), "max_items": spec.get("max_items"),
                                "files": [{"name": p, "digest": {"sha256": s}} for p, s in files],
                                "content_sha256": content_digest(files)}
    else:  # a suite of the engine's own corpus: its version digests the documents
        data = {"builtin": True, "documents": spec.get("documents", [])}
    return {"suite": {"id": run.suite, "version": run.suite_version, "kind": run.suite_kind,
                      "params": result["suite"].get("params", {}), "dataset": data},
            "evaluated": {"subject_hash": run.subject_hash, "runtime": run.runtime, "inputs": run.hashes},
            "engine_version": result["versions"].get("engine"), "library_versions": result["versions"],
            "seed": result["seed"], "settings": result["settings"], "metrics": result["metrics"]}


def eval_run_record_failure(*, run: EvalRun, reason: str) -> bool:
    return bool(_held(run).update(state=RunState.FAILED, failure_reason=reason[:2000], finished_at=timezone.now(),
                                  lease_expires_at=None))


@transaction.atomic
def eval_run_rerun(*, run: EvalRun, moderator: User) -> EvalRun:
    """Run it again from scratch (moderators only). A suite that could not be built is resolved again first."""
    if not getattr(moderator, "is_moderator", False):
        raise PermissionDenied("only moderators can re-run evaluations")
    locked = EvalRun.objects.select_for_update().get(pk=run.pk)
    if locked.state == RunState.RUNNING and locked.lease_expires_at and locked.lease_expires_at > timezone.now():
        raise RerunRefused(f"{locked} is running now")
    before = {"state": locked.state, "failure_reason": locked.failure_reason}
    if locked.suite_version == UNRESOLVED and locked.version is not None:
        _resolve_again(locked)
    EvalRun.objects.filter(pk=locked.pk).update(
        state=RunState.QUEUED, failure_reason="", lease_expires_at=None, requested_by=moderator,
        enqueued_at=timezone.now(), started_at=None, finished_at=None, metrics={}, records=[], seconds=None,
    )
    locked.refresh_from_db()
    audit_record(actor=moderator, action="eval.rerun", target_kind="eval_run", target_id=locked.pk,
                 target_label=str(locked), before=before, after={"state": locked.state})
    eval_run_queued.send(sender=EvalRun, run_id=locked.pk)
    return locked


def _resolve_again(run: EvalRun) -> None:
    """A declared dataset that was missing may be published by now: point the run at its suite if so."""
    suite = task_suite_ref(_prefetched_version(run.version))
    if suite is None or suite.error:
        return
    try:
        with transaction.atomic():
            EvalRun.objects.filter(pk=run.pk).update(suite=suite.id, suite_version=suite.version,
                                                     suite_kind=suite.kind, suite_spec=suite.spec,
                                                     dataset_version=suite.dataset_version)
    except IntegrityError:
        pass  # that suite already has a run on this adapter; this one stays as it was


def eval_runs_requeue_stale(*, queued_after_seconds: int) -> list[int]:
    """Runs whose worker died (lease ran out), or queued so long their message was surely lost, are sent again."""
    cutoff = timezone.now() - timedelta(seconds=queued_after_seconds)
    stale = EvalRun.objects.filter((Q(state=RunState.RUNNING) & lease_expired())
                                   | Q(state=RunState.QUEUED, enqueued_at__lt=cutoff))
    ids = list(stale.values_list("pk", flat=True))
    EvalRun.objects.filter(pk__in=ids, state=RunState.QUEUED).update(enqueued_at=timezone.now())
    for run_id in ids:
        eval_run_queued.send(sender=EvalRun, run_id=run_id)
    return ids


def repository_scores_refresh(*, base_model: BaseModel, repository_ids: list[int] | None = None) -> None:
    """Repository.score of the base's adapters (or of these): the latest published version's retention.

    Retention is the one score every adapter has and the same for all adapters of a base; None until the
    adapter's and the base's general-perplexity runs have both finished.
    """
    latest = latest_published_versions(base_model, repository_ids)
    retention = retention_by_version(base_model, latest.values())
    for repository_id, version in latest.items():
        Repository.objects.filter(pk=repository_id).update(score=retention[version.pk])

"""Reads of single eval runs, with who may see them, and a version's runs as its status page follows them."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from hub.catalog.models import RepoKind, Version, VersionState
from hub.catalog.selectors import versions_visible_to
from hub.evals.models import EvalRun, RunState
from hub.evals.selectors.scores import metric_of, primary_metric
from hub.evals.subjects import adapter_subject
from hub.stacks.selectors import stacks_listed


def run_get_visible(user, run_id: int) -> EvalRun:
    """A run the user may see: a base model's, or one whose adapter, stack and dataset they may see."""
    run = EvalRun.objects.select_related("base_model", "version__repository__owner", "build",
                                         "dataset_version__repository__owner").filter(pk=run_id).first()
    if run is None or not _may_see(user, run):
        raise Http404(f"no eval run {run_id}")
    return run


def _may_see(user, run: EvalRun) -> bool:
    visible = versions_visible_to(user)
    if run.version_id and not visible.filter(pk=run.version_id).exists():
        return False
    if run.dataset_version_id and not visible.filter(pk=run.dataset_version_id).exists():
        return False
    if run.build_id and not getattr(user, "is_moderator", False):
        return stacks_listed().filter(pk=run.build_id).exists()
    return True


@dataclass(frozen=True)
class RunProgress:
    """One eval run of a version as its status page follows it."""

    run: EvalRun
    ahead: int | None  # queued runs enqueued before this one (while it is queued)
    metric: str  # the suite's primary metric, once finished
    value: float | None


@dataclass(frozen=True)
class EvalProgress:
    runs: list[RunProgress]
    waiting: bool  # not published yet: runs start at publication
    settled: bool  # nothing left to follow: every run finished or failed, or the version will not be evaluated

    @property
    def done(self) -> bool:
        return bool(self.runs) and all(p.run.is_done for p in self.runs)


def version_eval_progress(version: Version) -> EvalProgress:
    """The runs of an adapter version (by content: shared with an identical upload), queued ones with their place
    in the evals queue, finished ones with their primary score."""
    waiting = version.state in (VersionState.UPLOADED, VersionState.VALIDATING, VersionState.PENDING_REVIEW)
    if version.repository.kind != RepoKind.ADAPTER or version.base_model_id is None or not version.is_published:
        return EvalProgress([], waiting=waiting, settled=not waiting)
    version = (Version.objects.select_related("repository__owner", "base_model")
               .prefetch_related("files__blob", "base_model__files__blob").get(pk=version.pk))
    runs = list(EvalRun.objects.filter(subject_hash=adapter_subject(version).hash).defer("records")
                .order_by("suite", "-created_at"))
    progress = []
    for run in runs:
        ahead = (EvalRun.objects.filter(state=RunState.QUEUED, enqueued_at__lt=run.enqueued_at).count()
                 if run.state == RunState.QUEUED else None)
        metric = primary_metric(run) if run.state == RunState.FINISHED else ""
        progress.append(RunProgress(run, ahead, metric, metric_of(run, metric)[0] if metric else None))
    return EvalProgress(progress, waiting=False, settled=all(run.is_done for run in runs))

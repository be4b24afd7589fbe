"""Reads for training jobs. A job is seen by its owner and by moderators; to anyone else it does not exist."""

from __future__ import annotations

import statistics

from django.db.models import QuerySet
from django.http import Http404

from hub.catalog.models import BaseModel, RepoKind, Repository, Version, VersionState
from hub.catalog.selectors import versions_visible_to
from hub.training.models import JobState, TrainingJob
from workers.engine.training import estimate_seconds

MEASURED_JOBS = 20  # the latest finished jobs on a base model whose throughput predicts the next one's time


def _jobs() -> QuerySet[TrainingJob]:
    return TrainingJob.objects.select_related("owner", "base_model", "dataset_version__repository__owner",
                                              "version__repository__owner")


def jobs_of(user) -> QuerySet[TrainingJob]:
    return _jobs().filter(owner=user) if user and user.is_authenticated else TrainingJob.objects.none()


def job_get_visible(user, job_id: int) -> TrainingJob:
    job = _jobs().filter(pk=job_id).first()
    allowed = job is not None and user and user.is_authenticated and (
        job.owner_id == user.pk or getattr(user, "is_moderator", False))
    if not allowed:
        raise Http404(f"training job {job_id} not found")
    return job


def adapters_trained_on(user, dataset: Repository) -> QuerySet[Version]:
    """Adapter versions the viewer can see whose lineage names this dataset (trained here, or uploaded with it
    in their card's `datasets`)."""
    return (versions_visible_to(user).filter(repository__kind=RepoKind.ADAPTER, training_datasets=dataset)
            .select_related("repository__owner").order_by("-created_at")[:20])


def measured_tokens_per_second(base: BaseModel) -> float | None:
    """The median throughput of this hub's recent finished jobs on the base model, if any."""
    rates = [job.result.get("tokens_per_second") for job in TrainingJob.objects.filter(
        base_model=base, state=JobState.FINISHED).order_by("-finished_at")[:MEASURED_JOBS]]
    rates = [rate for rate in rates if isinstance(rate, int | float) and rate > 0]
    return statistics.median(rates) if rates else None


def training_estimate(*, base: BaseModel, dataset: Version, steps: int, batch_size: int, max_seq_len: int) -> float:
    """Seconds a job would take: its tokens (rows' mean length in characters / 4, capped by max_seq_len) at the
    throughput measured on this base here, else the engine's rule of thumb."""
    chars = ((dataset.stats or {}).get("chars") or {}).get("mean") or max_seq_len * 4
    tokens = steps * batch_size * min(max_seq_len, max(chars / 4, 1))
    return estimate_seconds(base.parameter_count, int(tokens), tokens_per_second=measured_tokens_per_second(base))


def datasets_to_train_on(user) -> QuerySet[Version]:
    """Published datasets, newest version of each first, for the form's choices."""
    return (Version.objects.filter(repository__kind=RepoKind.DATASET, state=VersionState.PUBLISHED)
            .select_related("repository__owner").order_by("repository__owner__username", "repository__name",
                                                          "-number"))

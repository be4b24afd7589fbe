"""Eval cards: a subject's scores beside its base model's, with history across an adapter's versions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.http import Http404

from hub.catalog.models import RepoKind, Repository, Version, VersionState
from hub.catalog.selectors import versions_of
from hub.evals.contamination import Flag, subject_flag
from hub.evals.models import EvalRun, RunState
from hub.evals.selectors.scores import Runs, Stacking, difference, metric_of, primary_metric, stack_members
from hub.evals.subjects import Subject, adapter_subject, base_subjects, stack_subjects
from hub.stacks.models import StackBuild
from workers.engine.evals import GENERAL_PERPLEXITY_ID


@dataclass(frozen=True)
class CardRow:
    """One metric of one finished run, beside the base model's figure on the same suite version."""

    suite: str
    suite_version: str
    metric: str
    value: float | None
    stderr: float | None
    base_value: float | None
    delta: float | None
    created_at: datetime | None
    run: EvalRun
    base_run: EvalRun | None


@dataclass(frozen=True)
class HistorySeries:
    """A suite's primary metric across an adapter's versions (the chart per adapter)."""

    suite: str
    metric: str
    points: list[tuple[int, float]]  # (version number, value)
    base_value: float | None


@dataclass
class EvalCard:
    subject: Subject
    runs: list[EvalRun]  # the newest run of each suite on the subject, in any state
    rows: list[CardRow]
    base_runs: list[EvalRun]
    history: list[HistorySeries] = field(default_factory=list)
    stacking: Stacking | None = None
    contamination: list[Flag] = field(default_factory=list)  # suites whose eval rows its training data holds


def _newest_per_suite(runs: Iterable[EvalRun]) -> list[EvalRun]:
    newest: dict[str, EvalRun] = {}
    for run in sorted(runs, key=lambda r: (r.created_at, r.pk), reverse=True):
        newest.setdefault(run.suite, run)
    return sorted(newest.values(), key=lambda r: (r.suite != GENERAL_PERPLEXITY_ID, r.suite))


def _card(subject: Subject, runs: Runs) -> EvalCard:
    base_hash = base_subjects(subject.base_model)[0].hash
    mine = _newest_per_suite(EvalRun.objects.filter(subject_hash=subject.hash).defer("records")
                             .select_related("base_model", "version__repository__owner", "build"))
    rows, base_runs = [], []
    for run in mine:
        if run.state != RunState.FINISHED:
            continue
        base_run = runs.get(run.suite, run.suite_version, base_hash)
        if base_run is not None and base_run.subject_hash != subject.hash:
            base_runs.append(base_run)
        for name in run.metrics:
            value, stderr = metric_of(run, name)
            base_value = metric_of(base_run, name)[0]
            rows.append(CardRow(run.suite, run.suite_version, name, value, stderr, base_value,
                                difference(value, base_value), run.finished_at, run, base_run))
        if run.suite == GENERAL_PERPLEXITY_ID and base_run is not None and base_run is not run:
            kept = runs.retention(subject.hash, base_hash, run.suite_version)
            rows.append(CardRow(run.suite, run.suite_version, "retention", kept, None, 1.0, difference(kept, 1.0),
                                run.finished_at, run, base_run))
    flags = [subject_flag(subject, run) for run in mine if run.state == RunState.FINISHED]
    return EvalCard(subject=subject, runs=mine, rows=rows, base_runs=base_runs,
                    contamination=[flag for flag in flags if flag is not None])


def adapter_eval_card(user, version: Version) -> EvalCard:
    """The eval card of an adapter version, with its scores across the repository's visible versions."""
    version = (Version.objects.select_related("repository__owner", "base_model")
               .prefetch_related("files__blob", "base_model__files__blob").get(pk=version.pk))
    others = [(other, adapter_subject(other).hash) for other in versions_of(user, version.repository)
              .filter(base_model=version.base_model).prefetch_related("base_model__files__blob").order_by("number")]
    subject, base_hash = adapter_subject(version), base_subjects(version.base_model)[0].hash
    # Only the runs this card reads (its subject's, its versions', the base's): not every run of the base model.
    runs = Runs(version.base_model, subject_hashes=[subject.hash, base_hash, *(h for _, h in others)])
    card = _card(subject, runs)
    history: dict[tuple[str, str], list[tuple[int, float]]] = {}
    bases: dict[tuple[str, str], float | None] = {}
    for other, other_hash in others:
        for run in runs.of_subject(other_hash):
            metric = primary_metric(run)
            value = metric_of(run, metric)[0]
            if value is None or any(n == other.number for n, _ in history.get((run.suite, metric), [])):
                continue  # several suite versions: the newest counts
            history.setdefault((run.suite, metric), []).append((other.number, value))
            bases[(run.suite, metric)] = metric_of(runs.get(run.suite, run.suite_version, base_hash), metric)[0]
    card.history = [HistorySeries(suite, metric, sorted(points), bases[(suite, metric)])
                    for (suite, metric), points in sorted(history.items())]
    return card


def stack_eval_cards(build: StackBuild) -> list[EvalCard]:
    """One card per artifact of the stack (HF, then each GGUF), the first with the stacking score."""
    build = (StackBuild.objects.select_related("base_model")
             .prefetch_related("files__blob", "base_model__files__blob", "members__version__repository__owner")
             .get(pk=build.pk))
    base_hash, subjects, members = base_subjects(build.base_model)[0].hash, stack_subjects(build), stack_members(build)
    runs = Runs(build.base_model, subject_hashes=[base_hash, *(s.hash for s in subjects), *(h for _, h in members)])
    cards = [_card(subject, runs) for subject in subjects]
    if cards:
        cards[0].stacking = runs.stacking(stack_hash=cards[0].subject.hash, base_hash=base_hash, members=members)
    return cards


def adapter_version_for_card(user, repository: Repository, number: int | None) -> Version:
    """The version an adapter's eval card is about: the given one, else the latest published, else the latest."""
    versions = versions_of(user, repository)
    if number is not None:
        version = versions.filter(number=number).first()
    else:
        version = versions.filter(state=VersionState.PUBLISHED).first() or versions.first()
    if version is None or version.base_model_id is None:
        raise Http404(f"no evaluated version of {repository.full_name}")
    return version


def version_eval_rows(version: Version) -> list[dict]:
    """The version's eval results as plain rows (moderation's review page): scores, and failures with reasons."""
    if version.repository.kind != RepoKind.ADAPTER or version.base_model_id is None:
        return []
    subject, base_hash = adapter_subject(version), base_subjects(version.base_model)[0].hash
    card = _card(subject, Runs(version.base_model, subject_hashes=[subject.hash, base_hash]))
    rows = [{"suite": r.suite, "version": r.suite_version, "metric": r.metric, "score": r.value,
             "base": r.base_value, "delta": r.delta} for r in card.rows]
    rows += [{"suite": run.suite, "version": run.suite_version, "metric": "", "score": run.get_state_display(),
              "base": None, "delta": run.failure_reason} for run in card.runs if run.state != RunState.FINISHED]
    return rows

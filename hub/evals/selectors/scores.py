"""Scores derived from finished runs, in memory: metric values, retention and stacking scores.

A page loads the finished runs of one base model once (without their per-item records) into
`Runs`, then derives everything from it: delta against the base model's run of the same suite
version, retention (the engine's, from the general-perplexity runs), and stacking scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, Window, prefetch_related_objects
from django.db.models.functions import RowNumber

from hub.catalog.models import BaseModel, RepoKind, Version, VersionState
from hub.evals.models import EvalRun, RunState
from hub.evals.subjects import adapter_subject, adapter_subjects, base_subjects
from hub.evals.suites import general_suite_ref
from hub.stacks.models import StackBuild
from workers.engine.errors import EngineInputError
from workers.engine.evals import GENERAL_PERPLEXITY_ID, retention, stacking_summary

# The metric a suite is ranked by; a leaderboard can show any other metric of the suite.
PRIMARY_METRIC = {"perplexity": "bits_per_byte", "multiple_choice": "acc", "generation": "exact_match"}
TASK_KINDS = ("multiple_choice", "generation")
# What scores, cards and leaderboards never read of a run: its per-item records and the reproduction details that
# the run's own page loads (JSON not decoded for every row of a board).
RUN_DETAIL_FIELDS = ("records", "model", "library_versions", "hashes")
# All that a board row or a repository's score reads of an adapter's latest version (with its repository and owner);
# not its card, reports or stats.
LATEST_VERSION_FIELDS = ("number", "state", "base_model", "published_at", "repository__kind", "repository__name",
                         "repository__downloads", "repository__owner__username")


def metric_of(run: EvalRun | None, name: str) -> tuple[float | None, float | None]:
    """(value, stderr) of one metric of a finished run; (None, None) when absent."""
    entry = (run.metrics or {}).get(name) if run is not None else None
    return (entry["value"], entry["stderr"]) if entry else (None, None)


def higher_is_better(run: EvalRun, name: str) -> bool:
    return bool((run.metrics.get(name) or {}).get("higher_is_better", True))


def primary_metric(run: EvalRun) -> str:
    return PRIMARY_METRIC.get(run.suite_kind) or next(iter(run.metrics), "")


def difference(value: float | None, base: float | None) -> float | None:
    """value - base, or None when either is missing."""
    return value - base if value is not None and base is not None else None


def _as_result(run: EvalRun) -> dict:
    """The parts of an engine result that scoring functions read."""
    return {"suite": {"id": run.suite, "version": run.suite_version}, "settings": run.suite_settings,
            "metrics": run.metrics}


@dataclass(frozen=True)
class StackingPart:
    adapter: str
    suite: str
    metric: str
    base: float
    alone: float
    stacked: float
    score: float | None


@dataclass(frozen=True)
class Stacking:
    mean: float | None
    min: float | None
    parts: list[StackingPart]


class Runs:
    """The finished runs of one base model, by (suite, suite version, subject hash), without their versions or stacks
    (`run.version` would be a query per run); records stay in the database."""

    def __init__(self, base_model: BaseModel, subject_hashes: Iterable[str] | None = None) -> None:
        runs = EvalRun.objects.filter(base_model=base_model, state=RunState.FINISHED)
        if subject_hashes is not None:
            runs = runs.filter(subject_hash__in=set(subject_hashes))
        # No joins: every run has this base (one instance for all), and the few that a page names by their version or
        # stack get it from the page's own rows (`leaderboards._link_run_subjects`).
        runs = list(runs.defer(*RUN_DETAIL_FIELDS).order_by("-finished_at", "-pk"))
        self.newest_first = runs
        self.by_subject: dict[str, list[EvalRun]] = {}
        for run in runs:
            run.base_model = base_model
            self.by_subject.setdefault(run.subject_hash, []).append(run)
        self.by_key = {(r.suite, r.suite_version, r.subject_hash): r for r in runs}
        self.general_version = general_suite_ref().version  # the one scheduled now: preferred over older ones

    def get(self, suite: str, suite_version: str, subject_hash: str) -> EvalRun | None:
        return self.by_key.get((suite, suite_version, subject_hash))

    def of_subject(self, subject_hash: str) -> list[EvalRun]:
        return list(self.by_subject.get(subject_hash, ()))

    def retention(self, subject_hash: str, base_hash: str, suite_version: str = "") -> float | None:
        """base bits-per-byte / subject bits-per-byte on the current general-perplexity version, else the newest
        version both have."""
        general = [r for r in self.of_subject(subject_hash) if r.suite == GENERAL_PERPLEXITY_ID]
        for run in sorted(general, key=lambda r: r.suite_version != self.general_version):
            if suite_version in ("", run.suite_version):
                base = self.get(run.suite, run.suite_version, base_hash)
                if base is not None:
                    try:
                        return retention(_as_result(run), _as_result(base))["retention"]
                    except (EngineInputError, TypeError, ZeroDivisionError):  # other settings, or an infinite score
                        return None
        return None

    def stacking(self, *, stack_hash: str, base_hash: str, members: Iterable[tuple[str, str]]) -> Stacking | None:
        """Each member's gain on its own task when stacked, as a share of its gain alone (the engine's score).

        `members` are (adapter ref, adapter subject hash); a member counts once its task was run on the base,
        alone and on the stack. The least gain that counts is one item of the smallest task.
        """
        base, alone, stacked, parts, resolution = {}, {}, {}, [], []
        for ref, adapter_hash in members:
            task = next((r for r in self.of_subject(adapter_hash) if r.suite_kind in TASK_KINDS), None)
            if task is None:
                continue
            on_base, on_stack = (self.get(task.suite, task.suite_version, h) for h in (base_hash, stack_hash))
            metric = primary_metric(task)
            values = metric_of(on_base, metric)[0], metric_of(task, metric)[0], metric_of(on_stack, metric)[0]
            if None in values:
                continue
            base[ref], alone[ref], stacked[ref] = values
            parts.append((ref, task.suite, metric))
            resolution.append(1 / max(int(task.suite_params.get("params", {}).get("items", 1)), 1))
        if not parts:
            return None
        summary = stacking_summary(base, alone, stacked, min_gain=max(resolution) - 1e-9)
        return Stacking(summary["mean"], summary["min"], [
            StackingPart(ref, suite, metric, base[ref], alone[ref], stacked[ref], summary["per_adapter"][ref])
            for ref, suite, metric in parts])


def latest_published_versions(base_model: BaseModel, repository_ids: Iterable[int] | None = None) -> dict[int, Version]:
    """Each adapter repository's latest published version for this base (or those repositories), by repository id,
    with only LATEST_VERSION_FIELDS loaded (another field would be a query per version)."""
    published = Version.objects.filter(repository__kind=RepoKind.ADAPTER, base_model=base_model,
                                       state=VersionState.PUBLISHED)
    if repository_ids is not None:
        published = published.filter(repository_id__in=repository_ids)
    # Only the newest of each repository is loaded (older versions are most of the rows), found in one pass by a
    # window (a correlated subquery ran once per version: twice the time). Their files are not: `adapter_subjects`
    # reads them as plain rows.
    newest_first = Window(RowNumber(), partition_by=F("repository_id"), order_by=F("number").desc())
    versions = (published.annotate(newest_first=newest_first).filter(newest_first=1).select_related("repository__owner")
                .only(*LATEST_VERSION_FIELDS).order_by("repository_id"))
    # Every version has this base: one instance, its files loaded once, instead of a copy (and a load) per version.
    prefetch_related_objects([base_model], "files__blob")
    latest: dict[int, Version] = {}
    for version in versions:
        version.base_model = base_model
        latest[version.repository_id] = version
    return latest


def retention_by_version(base_model: BaseModel, versions: Iterable[Version]) -> dict[int, float | None]:
    """Retention of each of these adapter versions, by version id (reading only their runs and the base's)."""
    base_hash = base_subjects(base_model)[0].hash
    hashes = {pk: subject.hash for pk, subject in adapter_subjects(versions).items()}
    runs = Runs(base_model, [base_hash, *hashes.values()])
    return {pk: runs.retention(subject_hash, base_hash) for pk, subject_hash in hashes.items()}


def stack_members(build: StackBuild) -> list[tuple[str, str]]:
    """(adapter ref, adapter subject hash) of each member of a stack: what `Runs.stacking` takes."""
    return [(str(m.version), adapter_subject(m.version).hash)
            for m in build.members.select_related("version__repository__owner", "version__base_model")
            .prefetch_related("version__files__blob", "version__base_model__files__blob")]

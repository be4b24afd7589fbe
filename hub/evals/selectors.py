"""Reads for evals: eval cards, leaderboards and runs, derived from finished runs in memory.

A page loads the finished runs of one base model once (without their per-item records) into
`Runs`, then derives everything from it: delta against the base model's run of the same suite
version, retention (the engine's, from the general-perplexity runs), and stacking scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max
from django.http import Http404
from django.urls import reverse

from hub.catalog.models import BaseModel, RepoKind, Repository, Version, VersionState
from hub.catalog.selectors import versions_of, versions_visible_to
from hub.evals.models import EvalRun, RunState, Runtime
from hub.evals.subjects import Subject, adapter_subject, base_subjects, stack_subjects
from hub.evals.suites import general_suite_ref
from hub.stacks.models import StackBuild
from hub.stacks.selectors import stacks_listed
from workers.engine.errors import EngineInputError
from workers.engine.evals import GENERAL_PERPLEXITY_ID, retention, stacking_summary

# The metric a suite is ranked by; a leaderboard can show any other metric of the suite.
PRIMARY_METRIC = {"perplexity": "bits_per_byte", "multiple_choice": "acc", "generation": "exact_match"}
TASK_KINDS = ("multiple_choice", "generation")


def metric_of(run: EvalRun | None, name: str) -> tuple[float | None, float | None]:
    """(value, stderr) of one metric of a finished run; (None, None) when absent."""
    entry = (run.metrics or {}).get(name) if run is not None else None
    return (entry["value"], entry["stderr"]) if entry else (None, None)


def higher_is_better(run: EvalRun, name: str) -> bool:
    return bool((run.metrics.get(name) or {}).get("higher_is_better", True))


def primary_metric(run: EvalRun) -> str:
    return PRIMARY_METRIC.get(run.suite_kind) or next(iter(run.metrics), "")


def _difference(value: float | None, base: float | None) -> float | None:
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
    """The finished runs of one base model, by (suite, suite version, subject hash); records stay in the database."""

    def __init__(self, base_model: BaseModel, subject_hashes: Iterable[str] | None = None) -> None:
        runs = EvalRun.objects.filter(base_model=base_model, state=RunState.FINISHED)
        if subject_hashes is not None:
            runs = runs.filter(subject_hash__in=set(subject_hashes))
        runs = list(runs.defer("records").select_related("base_model", "version__repository__owner", "build")
                    .order_by("-finished_at", "-pk"))
        self.newest_first = runs
        self.by_key = {(r.suite, r.suite_version, r.subject_hash): r for r in runs}
        self.general_version = general_suite_ref().version  # the one scheduled now: preferred over older ones

    def get(self, suite: str, suite_version: str, subject_hash: str) -> EvalRun | None:
        return self.by_key.get((suite, suite_version, subject_hash))

    def of_subject(self, subject_hash: str) -> list[EvalRun]:
        return [r for r in self.newest_first if r.subject_hash == subject_hash]

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
    """Each adapter repository's latest published version for this base (or those repositories), by repository id."""
    versions = Version.objects.filter(repository__kind=RepoKind.ADAPTER, base_model=base_model,
                                      state=VersionState.PUBLISHED)
    if repository_ids is not None:
        versions = versions.filter(repository_id__in=repository_ids)
    versions = (versions
                .select_related("repository__owner", "base_model")
                .prefetch_related("files__blob", "base_model__files__blob").order_by("repository_id", "-number"))
    latest: dict[int, Version] = {}
    for version in versions:
        latest.setdefault(version.repository_id, version)
    return latest


def retention_by_version(base_model: BaseModel, versions: Iterable[Version]) -> dict[int, float | None]:
    """Retention of each of these adapter versions, by version id (reading only their runs and the base's)."""
    base_hash = base_subjects(base_model)[0].hash
    hashes = {version.pk: adapter_subject(version).hash for version in versions}
    runs = Runs(base_model, [base_hash, *hashes.values()])
    return {pk: runs.retention(subject_hash, base_hash) for pk, subject_hash in hashes.items()}


# --- leaderboards ----------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One leaderboard row: a subject and its finished run of the board's suite version."""

    kind: str  # base | adapter | stack | quantized
    name: str
    url: str
    subject: Subject
    run: EvalRun | None = None  # set once a run of the board's suite version is found
    value: float | None = None
    stderr: float | None = None
    base_value: float | None = None
    delta: float | None = None
    retention: float | None = None
    downloads: int | None = None
    date: datetime | None = None
    stacking: Stacking | None = None

    @property
    def size(self) -> int:
        return self.subject.size

    @property
    def bits_per_weight(self) -> float | None:
        return self.subject.bits_per_weight


@dataclass
class Leaderboard:
    base_model: BaseModel
    suite: str
    suite_version: str = ""
    suite_versions: list[str] = field(default_factory=list)
    metric: str = ""
    metrics: list[str] = field(default_factory=list)
    higher_is_better: bool = True
    entries: list[Entry] = field(default_factory=list)


KINDS = ("base", "adapter", "stack", "quantized")
SORTS = ("score", "delta", "retention", "size", "bits_per_weight", "downloads", "date", "name")


def stack_label(build: StackBuild) -> str:
    members = " + ".join(f"{m.version.repository.full_name}×{m.weight:g}" for m in build.members.all())
    return f"{members} ({build.method})"


def _candidates(base: BaseModel) -> list[Entry]:
    """Every subject a leaderboard of this base may list (without runs yet): the base and its GGUF files,
    each adapter's latest published version, and every listed stack's artifacts."""
    owner, name = base.owner_name
    base_url = reverse("base-model", args=[owner, name])
    hf, *ggufs = base_subjects(base)
    rows = [Entry("base", base.name, base_url, hf, date=base.created_at)]
    rows += [Entry("quantized", f"{base.name} · {s.artifact_path}", base_url, s, date=base.created_at) for s in ggufs]
    for version in latest_published_versions(base).values():
        repo = version.repository
        url = reverse("adapter-version-page", args=[repo.owner.username, repo.name, version.number])
        rows.append(Entry("adapter", f"{repo.full_name} v{version.number}", url, adapter_subject(version),
                           downloads=repo.downloads, date=version.published_at))
    for build in stacks_listed(base_model=base.name).prefetch_related("files__blob", "base_model__files__blob"):
        url = reverse("stack-evals-page", args=[build.recipe_hash])
        for subject in stack_subjects(build):
            gguf = subject.runtime == Runtime.GGUF
            label = stack_label(build) + (f" · {subject.artifact_path}" if gguf else "")
            rows.append(Entry("quantized" if gguf else "stack", label, url, subject, downloads=build.downloads,
                               date=build.finished_at))
    return rows


def leaderboard(base: BaseModel, suite: str, *, suite_version: str = "", metric: str = "", kind: str = "",
                search: str = "", sort: str = "score", order: str = "") -> Leaderboard:
    """One base model's board for one suite: every subject with a finished run of the chosen suite version."""
    runs = Runs(base)
    of_suite = [r for r in runs.newest_first if r.suite == suite]
    board = Leaderboard(base_model=base, suite=suite)
    if not of_suite:
        return board
    board.suite_versions = list(dict.fromkeys(r.suite_version for r in of_suite))
    preferred = [suite_version, runs.general_version if suite == GENERAL_PERPLEXITY_ID else ""]
    board.suite_version = next((v for v in preferred if v in board.suite_versions), board.suite_versions[0])
    sample = next(r for r in of_suite if r.suite_version == board.suite_version)
    board.metrics = list(sample.metrics)
    board.metric = metric if metric in board.metrics else primary_metric(sample)
    board.higher_is_better = higher_is_better(sample, board.metric)
    candidates = _candidates(base)
    base_hash = candidates[0].subject.hash
    base_value = metric_of(runs.get(suite, board.suite_version, base_hash), board.metric)[0]
    for entry in candidates:
        entry.run = runs.get(suite, board.suite_version, entry.subject.hash)
        if entry.run is None or (kind and entry.kind != kind) or (search and search.lower() not in entry.name.lower()):
            continue
        entry.value, entry.stderr = metric_of(entry.run, board.metric)
        entry.base_value, entry.delta = base_value, _difference(entry.value, base_value)
        entry.retention = runs.retention(entry.subject.hash, base_hash)
        if entry.subject.build is not None:
            entry.stacking = runs.stacking(stack_hash=entry.subject.hash, base_hash=base_hash,
                                           members=_members(entry.subject.build))
        board.entries.append(entry)
    _sort(board, sort, order)
    return board


def _members(build: StackBuild) -> list[tuple[str, str]]:
    return [(str(m.version), adapter_subject(m.version).hash)
            for m in build.members.select_related("version__repository__owner", "version__base_model")
            .prefetch_related("version__files__blob", "version__base_model__files__blob")]


def _sort(board: Leaderboard, sort: str, order: str) -> None:
    """Sort in place, rows without the value last; the score's default direction is its better one."""
    sort = sort if sort in SORTS else "score"
    descending = {"score": board.higher_is_better, "delta": board.higher_is_better, "name": False}.get(sort, True)
    if order in ("asc", "desc"):
        descending = order == "desc"
    key = {"score": "value", "date": "date", "name": "name"}.get(sort, sort)
    present = [e for e in board.entries if getattr(e, key) is not None]
    missing = [e for e in board.entries if getattr(e, key) is None]
    board.entries = sorted(present, key=lambda e: getattr(e, key), reverse=descending) + missing


@dataclass(frozen=True)
class BoardSummary:
    base_model: str
    suite: str
    suite_kind: str
    subjects: int
    updated_at: datetime

    @property
    def owner(self) -> str:
        return self.base_model.partition("/")[0]

    @property
    def name(self) -> str:
        return self.base_model.partition("/")[2]


def leaderboards_index() -> list[BoardSummary]:
    """Every (base model, suite) with finished runs."""
    rows = (EvalRun.objects.filter(state=RunState.FINISHED)
            .values("base_model__name", "suite", "suite_kind")
            .annotate(subjects=Count("subject_hash", distinct=True), updated_at=Max("finished_at"))
            .order_by("base_model__name", "suite"))
    return [BoardSummary(r["base_model__name"], r["suite"], r["suite_kind"], r["subjects"], r["updated_at"])
            for r in rows]


# --- eval cards ------------------------------------------------------------------------------------------------------


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
                                _difference(value, base_value), run.finished_at, run, base_run))
        if run.suite == GENERAL_PERPLEXITY_ID and base_run is not None and base_run is not run:
            kept = runs.retention(subject.hash, base_hash, run.suite_version)
            rows.append(CardRow(run.suite, run.suite_version, "retention", kept, None, 1.0, _difference(kept, 1.0),
                                run.finished_at, run, base_run))
    return EvalCard(subject=subject, runs=mine, rows=rows, base_runs=base_runs)


def adapter_eval_card(user, version: Version) -> EvalCard:
    """The eval card of an adapter version, with its scores across the repository's visible versions."""
    version = (Version.objects.select_related("repository__owner", "base_model")
               .prefetch_related("files__blob", "base_model__files__blob").get(pk=version.pk))
    runs = Runs(version.base_model)
    card = _card(adapter_subject(version), runs)
    base_hash = base_subjects(version.base_model)[0].hash
    history: dict[tuple[str, str], list[tuple[int, float]]] = {}
    bases: dict[tuple[str, str], float | None] = {}
    for other in versions_of(user, version.repository).filter(base_model=version.base_model) \
            .prefetch_related("base_model__files__blob").order_by("number"):
        for run in runs.of_subject(adapter_subject(other).hash):
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
    runs = Runs(build.base_model)
    base_hash = base_subjects(build.base_model)[0].hash
    cards = [_card(subject, runs) for subject in stack_subjects(build)]
    if cards:
        cards[0].stacking = runs.stacking(stack_hash=cards[0].subject.hash, base_hash=base_hash,
                                          members=_members(build))
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
    card = _card(adapter_subject(version), Runs(version.base_model))
    rows = [{"suite": r.suite, "version": r.suite_version, "metric": r.metric, "score": r.value,
             "base": r.base_value, "delta": r.delta} for r in card.rows]
    rows += [{"suite": run.suite, "version": run.suite_version, "metric": "", "score": run.get_state_display(),
              "base": None, "delta": run.failure_reason} for run in card.runs if run.state != RunState.FINISHED]
    return rows


# --- runs ------------------------------------------------------------------------------------------------------------


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

"""Leaderboards: one base model's subjects ranked on one suite version, and the index of boards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max, prefetch_related_objects
from django.urls import reverse

from hub.catalog.models import BaseModel
from hub.evals.contamination import Flag, hide_threshold, subject_flag
from hub.evals.models import EvalRun, RunState, Runtime
from hub.evals.selectors.scores import (
    Runs,
    Stacking,
    difference,
    higher_is_better,
    latest_published_versions,
    metric_of,
    primary_metric,
    stack_members,
)
from hub.evals.subjects import Subject, adapter_subjects, base_subjects, stack_subjects
from hub.stacks.selectors import stacks_listed
from workers.engine.evals import GENERAL_PERPLEXITY_ID


@dataclass
class Entry:
    """One leaderboard row: a subject and its finished run of the board's suite version."""

    kind: str  # base | adapter | stack | quantized
    name: str
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
    contamination: Flag | None = None  # its training data holds rows of this suite's eval set

    @property
    def url(self) -> str:
        """The adapter version's page, the stack's evals, or the base model's page (reversed only for rows shown)."""
        version, build = self.subject.version, self.subject.build
        if version is not None:
            repo = version.repository
            return reverse("adapter-version-page", args=[repo.owner.username, repo.name, version.number])
        if build is not None:
            return reverse("stack-evals-page", args=[build.recipe_hash])
        return reverse("base-model", args=list(self.subject.base_model.owner_name))

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
    contamination_threshold: float = 0.0  # rows flagged above this share are hidden unless shown
    hidden_contaminated: int = 0


KINDS = ("base", "adapter", "stack", "quantized")
SORTS = ("score", "delta", "retention", "size", "bits_per_weight", "downloads", "date", "name")


def _candidates(base: BaseModel) -> list[Entry]:
    """Every subject a leaderboard of this base may list (without runs yet): the base and its GGUF files,
    each adapter's latest published version, and every listed stack's artifacts."""
    hf, *ggufs = base_subjects(base)
    rows = [Entry("base", base.name, hf, date=base.created_at)]
    rows += [Entry("quantized", f"{base.name} · {s.artifact_path}", s, date=base.created_at) for s in ggufs]
    latest = latest_published_versions(base).values()
    subjects = adapter_subjects(latest)
    for version in latest:
        repo = version.repository
        rows.append(Entry("adapter", f"{repo.full_name} v{version.number}", subjects[version.pk],
                          downloads=repo.downloads, date=version.published_at))
    for build in stacks_listed(base_model=base.name).prefetch_related("files__blob", "base_model__files__blob"):
        for subject in stack_subjects(build):
            gguf = subject.runtime == Runtime.GGUF
            label = build.display_name + (f" · {subject.artifact_path}" if gguf else "")
            rows.append(Entry("quantized" if gguf else "stack", label, subject, downloads=build.downloads,
                              date=build.finished_at))
    return rows


def leaderboard(base: BaseModel, suite: str, *, suite_version: str = "", metric: str = "", kind: str = "",
                search: str = "", sort: str = "score", order: str = "", show_contaminated: bool = False) -> Leaderboard:
    """One base model's board for one suite: every subject with a finished run of the chosen suite version."""
    runs = Runs(base)
    of_suite = [r for r in runs.newest_first if r.suite == suite]
    board = Leaderboard(base_model=base, suite=suite, contamination_threshold=hide_threshold())
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
        entry.base_value, entry.delta = base_value, difference(entry.value, base_value)
        entry.retention = runs.retention(entry.subject.hash, base_hash)
        if entry.subject.build is not None:
            entry.stacking = runs.stacking(stack_hash=entry.subject.hash, base_hash=base_hash,
                                           members=stack_members(entry.subject.build))
        entry.contamination = subject_flag(entry.subject, entry.run)
        if entry.contamination is not None and entry.contamination.hidden_by_default and not show_contaminated:
            board.hidden_contaminated += 1
            continue
        board.entries.append(entry)
    _sort(board, sort, order)
    _link_run_subjects(board.entries)
    return board


def _link_run_subjects(entries: list[Entry]) -> None:
    """Each row's run with the version or stack it was scheduled for (its label names it): the row's own instance,
    or, for a run shared by an identical earlier upload, that version loaded for all such rows at once."""
    for entry in entries:
        run, subject = entry.run, entry.subject
        if subject.version is not None and run.version_id == subject.version.pk:
            run.version = subject.version
        if subject.build is not None and run.build_id == subject.build.pk:
            run.build = subject.build
    prefetch_related_objects([e.run for e in entries if e.run.version_id and not EvalRun.version.is_cached(e.run)],
                             "version__repository__owner")
    prefetch_related_objects([e.run for e in entries if e.run.build_id and not EvalRun.build.is_cached(e.run)], "build")


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

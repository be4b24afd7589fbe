"""Contamination flags on eval results: an adapter whose lineage names a training dataset that holds rows of the
suite's eval set is flagged on its eval card, on every leaderboard row of that suite and in the API; a stack
carries the worst flag of its members.

The overlap itself is measured by the data reports' workers (13-grams on normalised text, as lm-evaluation-
harness decontaminates, and MinHash near duplicates; see workers/engine/contamination.py); this module only
reads the finished checks and decides what a flag says and when a leaderboard hides a row by default
(overlap above CONTAMINATION_HIDE_ABOVE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from hub.datareports.selectors import worst_contamination
from hub.evals.models import EvalRun
from hub.evals.subjects import Subject


@dataclass(frozen=True)
class Flag:
    suite: str
    overlap: float  # share of the suite's eval rows found in the training data
    rows: int
    eval_rows: int
    training_dataset: str  # owner/name@version
    member: str = ""  # the stack member whose training data it is

    @property
    def hidden_by_default(self) -> bool:
        return self.overlap > settings.CONTAMINATION_HIDE_ABOVE

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "overlap": self.overlap, "rows": self.rows, "eval_rows": self.eval_rows,
                "training_dataset": self.training_dataset, "member": self.member}


def hide_threshold() -> float:
    return settings.CONTAMINATION_HIDE_ABOVE


def _eval_set(run: EvalRun) -> tuple[int, str] | None:
    """The eval dataset version and split a task run scored on; None for suites not built from a hub dataset."""
    if run.dataset_version_id is None:
        return None
    return run.dataset_version_id, str((run.suite_spec or {}).get("split") or "")


def version_flag(version: Any, run: EvalRun, *, member: str = "") -> Flag | None:
    """The flag of an adapter version on this run's suite: its training dataset holding most of the eval set."""
    eval_set = _eval_set(run)
    if eval_set is None or version is None:
        return None
    check = worst_contamination(version.training_datasets.values_list("pk", flat=True), *eval_set)
    if check is None:
        return None
    return Flag(run.suite, check.overlap, check.rows, check.eval_rows, str(check.train_version), member)


def subject_flag(subject: Subject, run: EvalRun | None) -> Flag | None:
    """An adapter's own flag; a stack's worst member flag; none for a base model."""
    if run is None:
        return None
    if subject.version is not None:
        return version_flag(subject.version, run)
    if subject.build is not None:
        flags = [version_flag(m.version, run, member=str(m.version))
                 for m in subject.build.members.select_related("version__repository__owner")]
        return max((f for f in flags if f is not None), key=lambda f: f.overlap, default=None)
    return None

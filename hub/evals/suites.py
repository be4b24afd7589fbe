"""Which suites an adapter is evaluated on, and how a worker rebuilds a suite from a run's spec.

Every adapter gets the engine's general-perplexity suite (retention compares it with the base's).
An adapter whose card declares an eval dataset also gets a task suite built from that dataset's
rows on the hub:

    eval_dataset: owner/name        # or owner/name@3 to pin a version; optional eval_split: test
    datasets: [owner/name]          # else: the eval split of the first training dataset that has one

Hub datasets hold instruction, chat, multiple-choice or text rows; `workers.engine.datasets`, where
those shapes are defined and validated, turns a row into an engine item (`task_row`). Text rows are not tasks.

The suite's version is the engine's: it digests the items, so a new dataset version, another
split, or a different cap on items is a new version and never shares cached scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from hub.catalog.blobstore import open_blob
from hub.catalog.models import Version
from hub.catalog.selectors import published_dataset_version
from workers.engine.datasets import DATA_SUFFIXES, EVAL_SPLITS, records_of, task_row
from workers.engine.evals import (
    GENERAL_DOC_KEYS,
    GENERAL_PERPLEXITY_ID,
    Suite,
    builtin_suite,
    perplexity_suite,
    pydoc_documents,
    task_suite,
)

UNRESOLVED = "unresolved"  # the version of a declared task suite that could not be built


class SuiteError(ValueError):
    """Why the suite an adapter declares cannot be built (shown as the run's failure reason)."""


@dataclass(frozen=True)
class SuiteRef:
    """A suite as scheduled: enough to key its results and for a worker to rebuild it."""

    id: str
    version: str
    kind: str
    spec: dict[str, Any]
    dataset_version: Version | None = field(default=None, compare=False)
    error: str = ""


def suite_from_spec(suite_id: str, spec: Mapping[str, Any]) -> Suite:
    """The engine suite a run's spec describes; raises ValueError (SuiteError, EngineInputError) when it cannot be built."""
    if "error" in spec:
        raise SuiteError(spec["error"])
    if suite_id == GENERAL_PERPLEXITY_ID:
        full = builtin_suite(GENERAL_PERPLEXITY_ID)
        documents = pydoc_documents(tuple(spec["documents"]))
        return full if documents == full.documents else perplexity_suite(full.id, documents,
                                                                         max_length=full.max_length)
    rows = dataset_rows([tuple(f) for f in spec["files"]], max_items=spec["max_items"])
    return task_suite(suite_id, [task_row(index, row) for index, row in enumerate(rows)])


def _ref(suite_id: str, spec: dict[str, Any], dataset_version: Version | None = None) -> SuiteRef:
    suite = suite_from_spec(suite_id, spec)
    return SuiteRef(suite_id, suite.version, suite.kind, spec, dataset_version)


def general_suite_ref() -> SuiteRef:
    return _ref(GENERAL_PERPLEXITY_ID, {"documents": list(GENERAL_DOC_KEYS[: settings.EVAL_MAX_DOCS or None])})


def task_suite_ref(version: Version) -> SuiteRef | None:
    """The task suite the adapter's card declares; None when it declares none. A declared dataset that
    cannot be used gives a ref with `error` set (its run fails with that reason)."""
    declared = Declared.from_card(version.card)
    if declared is None:
        return None
    suite_id = f"task:{declared.refs[0].partition('@')[0]}"
    try:
        resolved = declared.resolve()
        if resolved is None:
            return None
        dataset, split, files = resolved
        suite_id = f"task:{dataset.repository.full_name}" + (f":{split}" if split else "")
        spec = {"dataset": str(dataset), "split": split, "files": [list(f) for f in files],
                "max_items": settings.EVAL_MAX_ITEMS}
        return _ref(suite_id, spec, dataset)
    except (ValueError, OSError) as exc:  # SuiteError, EngineInputError, a row that is not JSON, a missing blob
        return SuiteRef(suite_id, UNRESOLVED, "", {"error": str(exc)}, error=str(exc))


@dataclass(frozen=True)
class Declared:
    """The eval dataset a card names: `eval_dataset` (explicit), else its training `datasets`."""

    refs: tuple[str, ...]
    split: str = ""
    explicit: bool = False

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Declared | None:
        explicit = card.get("eval_dataset")
        if isinstance(explicit, str) and explicit.strip():
            return cls((explicit.strip(),), str(card.get("eval_split") or ""), explicit=True)
        training = card.get("datasets")
        names = [training] if isinstance(training, str) else training if isinstance(training, list) else []
        refs = tuple(name.strip() for name in names if isinstance(name, str) and "/" in name)
        return cls(refs) if refs else None

    def resolve(self) -> tuple[Version, str, tuple[tuple[str, str], ...]] | None:
        """The dataset version, split and data files. An explicit `eval_dataset` must resolve (SuiteError
        says why not); training datasets are tried in order, and only one with a held-out split counts
        (None when none has one: the adapter simply has no task)."""
        for ref in self.refs:
            dataset = _published_dataset(ref, required=self.explicit)
            if dataset is None:
                continue
            splits: dict[str, list[str]] = (dataset.stats or {}).get("splits") or {}
            if self.split and self.split not in splits:
                raise SuiteError(f"{dataset} has no split {self.split!r} (it has {', '.join(sorted(splits)) or 'none'})")
            chosen = self.split or next((name for name in EVAL_SPLITS if name in splits), "")
            if not chosen and not self.explicit:
                continue
            wanted = set(splits[chosen]) if chosen else None
            files = tuple((f.path, f.blob.sha256) for f in dataset.files.select_related("blob").order_by("path")
                          if f.path.endswith(DATA_SUFFIXES) and (wanted is None or f.path in wanted))
            if not files:
                raise SuiteError(f"{dataset} has no data files to evaluate on")
            return dataset, chosen, files
        return None


def _published_dataset(ref: str, *, required: bool) -> Version | None:
    dataset = published_dataset_version(ref)
    if dataset is None and required:
        raise SuiteError(f"eval_dataset {ref} is not a published dataset on this hub")
    return dataset


def dataset_rows(files: Iterable[tuple[str, str]], *, max_items: int) -> list[dict[str, Any]]:
    """The first max_items rows of the files, streamed from the blob store (nothing past them is read), through the
    engine's one parser of data files (validation already refused files with unreadable rows)."""
    rows: list[dict[str, Any]] = []
    for path, sha256 in files:
        with open_blob(sha256) as stream:
            for record in records_of(stream, path):
                if len(rows) >= max_items:
                    return rows
                if not record.error and isinstance(record.value, dict):
                    rows.append(record.value)
    return rows



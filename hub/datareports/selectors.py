"""Reads for data reports, contamination and curation: the report a viewer may see (masked for all but the uploader
and moderators), the contamination of training datasets against an eval set, curated marks and collections."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from hub.catalog.models import Version
from hub.catalog.selectors import versions_visible_to
from hub.datareports.models import Collection, CollectionItem, Contamination, Curation, DataReport, JobState
from workers.engine.contamination import CONTAMINATION_VERSION
from workers.engine.datareport import REPORT_VERSION


def report_for_version(version: Version) -> DataReport | None:
    """The newest report of the version's content made by this engine's report version."""
    return version.data_reports.filter(report_version=REPORT_VERSION).order_by("-pk").first()


def report_for_viewer(report: dict[str, Any], *, sensitive: bool) -> dict[str, Any]:
    """The stored report (every excerpt already masked), without the secrets' locations for other viewers."""
    shown = copy.deepcopy(report)
    if not sensitive and "sensitive" in shown:
        shown["sensitive"] = {"rows": shown["sensitive"].get("rows", 0), "kinds": shown["sensitive"].get("kinds", {}),
                              "examples": [], "hidden": True}
    return shown


def contamination_checks(version: Version) -> list[Contamination]:
    """The finished checks this dataset version took part in, as training data or as the eval set."""
    return list(Contamination.objects.filter(Q(train_version=version) | Q(eval_version=version),
                                             state=JobState.FINISHED, method_version=CONTAMINATION_VERSION)
                .select_related("train_version__repository__owner", "eval_version__repository__owner")
                .order_by("-overlap", "pk"))


def worst_contamination(training_repository_ids: Iterable[int], eval_version_id: int,
                        eval_split: str) -> Contamination | None:
    """Of these training datasets (their checked versions), the one that holds most of the eval set, if any."""
    return (Contamination.objects.filter(train_version__repository_id__in=list(training_repository_ids),
                                         eval_version_id=eval_version_id, eval_split=eval_split,
                                         state=JobState.FINISHED, method_version=CONTAMINATION_VERSION, rows__gt=0)
            .select_related("train_version__repository__owner").order_by("-overlap", "-pk").first())


def checks_payload(checks: Iterable[Contamination]) -> list[dict[str, Any]]:
    return [{"training_dataset": str(c.train_version), "eval_dataset": str(c.eval_version),
             "eval_split": c.eval_split, "overlap": c.overlap, "rows": c.rows, "eval_rows": c.eval_rows,
             "ngram_rows": c.ngram_rows, "near_rows": c.near_rows, "examples": c.examples} for c in checks]


# --- curation --------------------------------------------------------------------------------------------------------


def curation_of(version: Version) -> Curation | None:
    return Curation.objects.select_related("curated_by").filter(version=version).first()


def curation_payload(curation: Curation | None) -> dict[str, Any] | None:
    if curation is None:
        return None
    return {"curated_by": curation.curated_by.username, "curated_at": curation.curated_at, "note": curation.note}


def collections_listed() -> QuerySet[Collection]:
    return Collection.objects.select_related("owner").prefetch_related("items")


def collection_get(owner: str, name: str) -> Collection:
    collection = collections_listed().filter(owner__username=owner, name=name).first()
    if collection is None:
        raise Http404(f"no collection {owner}/{name}")
    return collection


def collection_items_visible(user: Any, collection: Collection) -> list[CollectionItem]:
    """The collection's items, in order, that this viewer may see: an item they may not see is left out, as if it
    were not there."""
    visible = versions_visible_to(user).filter(repository=OuterRef("repository"))
    return list(collection.items.filter(Exists(visible)).select_related("repository__owner").order_by("position"))

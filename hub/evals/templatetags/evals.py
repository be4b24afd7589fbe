"""Template helpers for eval pages: the adapter eval card (the catalog page includes it) and sort links; numbers use
the builtin `readable` filters."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict

from hub.catalog.models import RepoKind, Version
from hub.core.formatting import metric_label
from hub.evals import charts
from hub.evals.selectors import cards as eval_cards
from hub.evals.selectors.runs import EvalProgress, version_eval_progress

register = template.Library()


@register.simple_tag(takes_context=True)
def adapter_eval_card(context: template.Context, version: Version) -> dict[str, Any] | None:
    """The card of an adapter version and a chart per suite of its scores across versions (None for datasets)."""
    if version.repository.kind != RepoKind.ADAPTER or version.base_model_id is None:
        return None
    card = eval_cards.adapter_eval_card(context["request"].user, version)
    # A trend needs two versions: one point is already the card's row.
    history = [charts.line(series.points, x_label="version", y_label=metric_label(series.metric),
                           title=f"{series.suite}: {metric_label(series.metric)} by version",
                           reference=series.base_value)
               for series in card.history if len(series.points) > 1]
    return {"card": card, "history": history}


@register.simple_tag
def eval_progress(version: Version) -> EvalProgress:
    """The version's eval runs for the upload status page (its live region re-fetches them the same way)."""
    return version_eval_progress(version)


@register.filter
def at(values: list[Any], index: int) -> Any:
    """values[index] (a choice's log-likelihood beside the choice)."""
    return values[index]


@register.simple_tag(takes_context=True)
def sort_url(context: template.Context, column: str) -> str:
    """The query string that sorts by `column`, flipping the order when it is already the sort column."""
    params: QueryDict = context["request"].GET.copy()
    if params.get("sort", "score") == column:
        params["order"] = "asc" if params.get("order") == "desc" else "desc"
    else:
        params.pop("order", None)
    params["sort"] = column
    return "?" + params.urlencode()

"""Template helpers for eval pages: the adapter eval card (the catalog page includes it), numbers, sort links."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict

from hub.catalog.models import RepoKind, Version
from hub.evals import charts, selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def adapter_eval_card(context: template.Context, version: Version) -> dict[str, Any] | None:
    """The card of an adapter version and a chart per suite of its scores across versions (None for datasets)."""
    if version.repository.kind != RepoKind.ADAPTER or version.base_model_id is None:
        return None
    card = selectors.adapter_eval_card(context["request"].user, version)
    history = [charts.line(series.points, x_label="version", y_label=series.metric,
                           title=f"{series.suite}: {series.metric} by version", reference=series.base_value)
               for series in card.history]
    return {"card": card, "history": history}


@register.filter
def score(value: float | None) -> str:
    return "—" if value is None else charts.number(value)


@register.filter
def signed(value: float | None) -> str:
    return "—" if value is None else ("+" if value > 0 else "") + charts.number(value)


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


@register.simple_tag(takes_context=True)
def with_param(context: template.Context, name: str, value: str) -> str:
    """The current query string with one parameter replaced."""
    params: QueryDict = context["request"].GET.copy()
    params[name] = value
    return "?" + params.urlencode()

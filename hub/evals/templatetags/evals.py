"""Template helpers for eval pages: the adapter eval card (the catalog page includes it) and sort links; numbers use
the builtin `readable` filters."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict
from django.template.defaultfilters import date
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from hub.catalog.models import RepoKind, Version
from hub.core.formatting import metric_label, readable_bytes, readable_number, signed_number
from hub.datareports.templatetags.datareports import percent
from hub.evals import charts
from hub.evals.contamination import Flag
from hub.evals.models import Runtime
from hub.evals.selectors import cards as eval_cards
from hub.evals.selectors.leaderboards import Entry
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


# A leaderboard row. Formatted here, not by a {% for %} in the template: there every cell is a variable lookup (an
# exception per attribute), a localization and an escape, and the 201 rows of the demo board's "show all" took 1.8
# times as long as one format_html a row (same markup; the two links' reverse() are a third of what is left).
BOARD_ROW = ('<tr class="kind-{kind}"><td>{rank}</td><td><a href="{url}">{name}</a>{contamination}</td>'
             '<td><span class="badge">{kind}</span>{runtime}</td><td><strong>{value}</strong>{stderr}</td>'
             '<td>{delta}</td><td>{retention}</td><td>{size}</td><td>{bits_per_weight}</td><td>{downloads}</td>'
             '<td class="small">{date}</td><td>{stacking}</td>'
             '<td class="small"><a href="{run_url}">per item</a></td></tr>')


@register.simple_tag
def leaderboard_rows(entries: list[Entry]) -> SafeString:
    """The table rows of these leaderboard entries, ranked from 1 in their order."""
    return format_html_join("", "{}", ((_board_row(rank, entry),) for rank, entry in enumerate(entries, start=1)))


def _board_row(rank: int, entry: Entry) -> SafeString:
    return format_html(
        BOARD_ROW, kind=entry.kind, rank=rank, url=entry.url, name=entry.name,
        contamination=_contamination_badge(entry.contamination),
        runtime=format_html(' <span class="small muted">llama.cpp</span>') if entry.subject.runtime == Runtime.GGUF
        else "",
        value=readable_number(entry.value),
        stderr=format_html(' <span class="small muted">± {}</span>', readable_number(entry.stderr))
        if entry.stderr is not None else "",
        delta=signed_number(entry.delta), retention=readable_number(entry.retention), size=readable_bytes(entry.size),
        bits_per_weight=readable_number(entry.bits_per_weight), downloads=readable_number(entry.downloads),
        date=date(template_localtime(entry.date), "Y-m-d"),
        stacking=readable_number(entry.stacking.mean) if entry.stacking else "—",
        run_url=reverse("eval-run-page", args=[entry.run.pk]))


def _contamination_badge(flag: Flag | None) -> SafeString | str:
    if flag is None:
        return ""
    via = f" (via {flag.member})" if flag.member else ""
    return format_html(' <span class="badge contaminated" title="{}{} holds {} of the {} eval rows">contaminated: {}'
                       "</span>", flag.training_dataset, via, flag.rows, flag.eval_rows, percent(flag.overlap))


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

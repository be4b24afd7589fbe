"""Template helpers for the data report section of the dataset page (templates/catalog/main/data_report.html)."""

from __future__ import annotations

from typing import Any

from django import template

from hub.catalog.models import RepoKind, Version
from hub.catalog.selectors import sees_sensitive
from hub.datareports import charts
from hub.datareports.selectors import (
    checks_payload,
    contamination_checks,
    curation_of,
    curation_payload,
    report_for_version,
    report_for_viewer,
)
from workers.engine.datareport import SECRET_LABELS

register = template.Library()


@register.simple_tag(takes_context=True)
def data_report(context: template.Context, version: Version) -> dict[str, Any] | None:
    """The version's report as this viewer may see it, with its length charts; None for adapters."""
    if version.repository.kind != RepoKind.DATASET:
        return None
    job = report_for_version(version)
    if job is None:
        return {"state": "none"}
    sensitive = sees_sensitive(context["request"].user, version)
    shown = report_for_viewer(job.report, sensitive=sensitive) if job.report else {}
    lengths = shown.get("lengths") or {}
    chart = {part: charts.histogram(lengths.get(part) or [], lengths.get("edges") or [], unit=lengths.get("unit", ""),
                                    title=f"{part} length") for part in ("prompt", "response")}
    secrets = shown.get("sensitive") or {}
    kinds = [(SECRET_LABELS.get(kind, kind), count) for kind, count in secrets.get("kinds", {}).items()]
    places = [{**e, "labels": [SECRET_LABELS.get(k, k) for k in e.get("kinds", [])]} for e in secrets.get("examples", [])]
    return {"state": job.state, "failure_reason": job.failure_reason, "report": shown, "charts": chart,
            "secret_kinds": kinds, "secret_places": places, "sees_sensitive": sensitive,
            "contamination": checks_payload(contamination_checks(version))}


@register.filter
def percent(share: float | None) -> str:
    """0.1234 -> "12.3%"; a share that is not zero never reads as 0%."""
    if share is None:
        return "—"
    value = share * 100
    if 0 < value < 0.1:
        return "<0.1%"
    return f"{value:.1f}%".replace(".0%", "%")


@register.simple_tag
def curation(version: Version) -> dict[str, Any] | None:
    """Who marked this dataset version curated, when and why; None when nobody did."""
    return curation_payload(curation_of(version))

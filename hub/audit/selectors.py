"""Reads of the audit log: filtered entries, the actions recorded, and a CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from hub.audit.models import AuditEntry
from hub.core.params import ascii_int


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    target_kind: str = ""
    target_id: str = ""
    search: str = ""


def audit_entries(filters: AuditFilters | None = None) -> QuerySet[AuditEntry]:
    filters = filters or AuditFilters()
    qs = AuditEntry.objects.all()
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.actor:
        qs = qs.filter(actor_name=filters.actor)
    if filters.target_kind:
        qs = qs.filter(target_kind=filters.target_kind)
    target_id = ascii_int(filters.target_id)
    if target_id is not None:
        qs = qs.filter(target_id=target_id)
    if filters.search:
        qs = qs.filter(Q(target_label__icontains=filters.search) | Q(reason__icontains=filters.search))
    return qs.order_by("-created_at", "-pk")


def audit_actions() -> list[str]:
    return list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct())


AUDIT_CSV_COLUMNS = ("id", "created_at", "actor", "action", "target_kind", "target_id", "target_label", "before",
                     "after", "reason")


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; labels and reasons come from users."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """The entries as CSV text, a row at a time (for a streaming download)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(AUDIT_CSV_COLUMNS)
    yield flush()
    for e in entries.iterator(chunk_size=500):
        writer.writerow([e.pk, e.created_at.isoformat(), _csv_safe(e.actor_name), e.action, e.target_kind,
                         e.target_id, _csv_safe(e.target_label), json.dumps(e.before, sort_keys=True),
                         json.dumps(e.after, sort_keys=True), _csv_safe(e.reason)])
        yield flush()

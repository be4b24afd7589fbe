"""Writing the audit log: the one service every app calls for moderation actions, role changes and takedowns."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from hub.audit.models import AuditEntry

SYSTEM_ACTOR = "system"


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target_kind: str,
    target_id: int,
    target_label: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry. `actor=None` means the hub acted on its own (e.g. reports crossed the threshold)."""
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else SYSTEM_ACTOR,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        target_label=target_label[:200],
        before=before or {},
        after=after or {},
        reason=reason,
    )

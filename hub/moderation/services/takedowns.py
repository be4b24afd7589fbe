"""Takedowns: withdrawing a target (keeping its files) and re-publishing it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from hub.accounts.models import User
from hub.audit.services import audit_record
from hub.moderation.models import Takedown, TakedownKind
from hub.moderation.services.notifications import notification_send
from hub.moderation.services.refusals import ModerationError, required_text, target_found
from hub.moderation.targets import TARGET_TYPES, Target


def withdraw(target: Target, *, kind: str, by: User | None, reason: str) -> Takedown:
    """Stop serving a target, keeping its files. A moderator's takedown replaces a hold placed by reports."""
    state_reason = (f"hidden until a moderator reviews it: {reason}" if kind == TakedownKind.HIDDEN
                    else f"unpublished by a moderator: {reason}")
    active = Takedown.objects.select_for_update().filter(target_kind=target.kind, target_id=target.id,
                                                          lifted_at__isnull=True).first()
    if active is None:
        active = Takedown(target_kind=target.kind, target_id=target.id, target_label=target.label)
    active.kind, active.reason, active.created_by, active.created_at = kind, reason, by, timezone.now()
    active.save()
    TARGET_TYPES[target.kind].withdraw(target, state_reason)
    return active


@transaction.atomic
def takedown_lift(*, takedown_id: int, moderator: User | None, reason: str) -> Takedown:
    """Re-publish a target a moderator unpublished (its files were kept). Holds by reports are lifted by
    dismissing the reports instead, so that no report is left open on a published item by accident. No
    `moderator`: the hub lifted it itself (a mirrored item its origin published again)."""
    reason = required_text(reason, "reason")
    takedown = Takedown.objects.select_for_update().filter(pk=takedown_id).first()
    if takedown is None:
        raise ModerationError("not_found", f"no takedown {takedown_id}", status=404)
    if takedown.lifted_at is not None:
        raise ModerationError("already_lifted", f"{takedown.target_label} was already re-published", status=409)
    if takedown.kind == TakedownKind.HIDDEN:
        raise ModerationError("resolve_reports", f"{takedown.target_label} is hidden by reports: resolve them",
                              status=409)
    target = target_found(takedown.target_kind, takedown.target_id)
    TARGET_TYPES[target.kind].restore(target, f"re-published by a moderator: {reason}")
    takedown.lifted_by, takedown.lifted_at, takedown.lift_reason = moderator, timezone.now(), reason
    takedown.save()
    audit_record(actor=moderator, action="takedown.republish", target_kind=target.kind, target_id=target.id,
                 target_label=target.label, before={"state": "unpublished", "takedown": takedown.reason},
                 after={"state": "published"}, reason=reason)
    if target.owner:
        notification_send(user=target.owner, subject=f"{target.label} is published again",
                          message=f"A moderator re-published {target.label}.\n\nReason: {reason}", url=target.url)
    return takedown

"""The review queue: versions that passed validation wait here for a moderator's decision."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hub.accounts.models import User
from hub.audit.services import audit_record
from hub.catalog.models import Version, VersionState
from hub.catalog.services import InvalidTransition, version_set_state
from hub.core.leases import claim_with_lease, lease_expired
from hub.moderation.models import RejectReason, ReviewItem, ReviewStatus, TakedownKind
from hub.moderation.selectors import review_claim_is_active
from hub.moderation.services.notifications import notification_send
from hub.moderation.services.refusals import ModerationError, required_text
from hub.moderation.services.takedowns import withdraw
from hub.moderation.targets import Target, target_of_version

# The decisions a moderator can take on a queue item, and the status each leaves it in.
DECISIONS: dict[str, str] = {
    "approve": ReviewStatus.APPROVED,
    "reject": ReviewStatus.REJECTED,
    "request_changes": ReviewStatus.CHANGES_REQUESTED,
}
BULK_DECISIONS = ("approve", "reject")



def review_item_open(*, version: Version) -> ReviewItem | None:
    """Queue a version that passed validation: always when it waits for review, and a trusted uploader's
    (published at once) with probability TRUSTED_SAMPLE_RATE. A resubmission takes the queue position of
    the version sent back for changes."""
    if version.state == VersionState.PUBLISHED:
        if random.random() >= settings.TRUSTED_SAMPLE_RATE:
            return None
        sampled, replaces = True, None
    elif version.state == VersionState.PENDING_REVIEW:
        sampled = False
        replaces = (ReviewItem.objects.filter(version__repository=version.repository_id,
                                              status=ReviewStatus.CHANGES_REQUESTED, replaced_by__isnull=True)
                    .order_by("-decided_at").first())
    else:
        return None
    item, _ = ReviewItem.objects.get_or_create(version=version, defaults={
        "sampled": sampled,
        "replaces": replaces,
        "queued_at": replaces.queued_at if replaces else timezone.now(),
        "first_upload": not Version.objects.filter(created_by=version.created_by_id, state=VersionState.PUBLISHED)
                                           .exclude(pk=version.pk).exists(),
        "skipped_checks": sum(1 for c in version.validation_report.get("checks", []) if c.get("skipped")),
    })
    return item


def _refuse_unless_decidable(item: ReviewItem, moderator: User) -> None:
    if item.status != ReviewStatus.OPEN:
        raise ModerationError("already_decided", f"{item} was already decided: {item.get_status_display()}",
                              status=409)
    if item.claimed_by_id not in (None, moderator.pk) and review_claim_is_active(item):
        raise ModerationError(
            "claimed", f"{item} is claimed by {item.claimed_by.username} until {item.lease_expires_at:%H:%M:%S} UTC",
            status=409)


def _item(item_id: int, *, lock: bool = False) -> ReviewItem:
    items = ReviewItem.objects.select_related("version__repository__owner", "version__created_by", "claimed_by")
    item = (items.select_for_update(of=("self",)) if lock else items).filter(pk=item_id).first()
    if item is None:
        raise ModerationError("not_found", f"no review item {item_id}", status=404)
    return item


def review_item_claim(*, item_id: int, moderator: User) -> ReviewItem:
    """Hold an item for CLAIM_TTL_SECONDS so no other moderator decides it meanwhile; claiming again renews."""
    before = _item(item_id)
    claimable = Q(status=ReviewStatus.OPEN) & (Q(claimed_by__isnull=True) | Q(claimed_by=moderator) | lease_expired())
    if not claim_with_lease(ReviewItem, before.pk, claimable, lease_seconds=settings.CLAIM_TTL_SECONDS,
                            claimed_by=moderator):
        _refuse_unless_decidable(_item(item_id), moderator)
        raise ModerationError("claimed", f"{before} was claimed by another moderator just now", status=409)
    item = _item(item_id)
    if not (before.claimed_by_id == moderator.pk and review_claim_is_active(before)):  # a renewal is not news
        target = target_of_version(item.version)
        audit_record(actor=moderator, action="review.claim", target_kind=target.kind, target_id=target.id,
                     target_label=target.label, after={"claimed_until": item.lease_expires_at.isoformat()})
    return item


def review_item_release(*, item_id: int, moderator: User) -> ReviewItem:
    ReviewItem.objects.filter(pk=item_id, claimed_by=moderator).update(claimed_by=None, lease_expires_at=None)
    return _item(item_id)


def _check_reason(decision: str, reason_code: str, note: str) -> None:
    if decision not in DECISIONS:
        raise ModerationError("invalid_decision", f"decision must be one of {', '.join(DECISIONS)}")
    if decision == "reject":
        if reason_code not in RejectReason.values:
            raise ModerationError("reason_required", f"a rejection needs a reason: one of {', '.join(RejectReason.values)}")
        if reason_code == RejectReason.OTHER:
            required_text(note, "note")
    if decision == "request_changes":
        required_text(note, "note")


@transaction.atomic
def review_item_decide(*, item_id: int, moderator: User, decision: str, reason_code: str = "",
                       note: str = "") -> ReviewItem:
    """Approve (publish), reject, or send back for changes; the uploader is told why."""
    note = note.strip()
    _check_reason(decision, reason_code, note)
    item = _item(item_id, lock=True)
    _refuse_unless_decidable(item, moderator)
    if decision == "request_changes" and item.sampled:
        raise ModerationError("not_for_sampled", "a sampled version is already published: approve or reject it")
    version, target = item.version, target_of_version(item.version)
    item.status = DECISIONS[decision]
    item.reason_code = reason_code if decision == "reject" else ""
    item.note, item.decided_by, item.decided_at = note, moderator, timezone.now()
    item.claimed_by, item.lease_expires_at = None, None
    item.save()
    before = version.state
    try:
        if decision == "approve" and not item.sampled:
            version_set_state(version=version, state=VersionState.PUBLISHED, reason="approved by a moderator")
        elif decision == "reject" and item.sampled:
            withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator,
                      reason=f"rejected in review: {item.outcome_text}")
        elif decision == "reject":
            version_set_state(version=version, state=VersionState.REJECTED,
                              reason=f"rejected in review: {item.outcome_text}")
        elif decision == "request_changes":
            version_set_state(version=version, state=VersionState.REJECTED,
                              reason=f"changes requested: {note} (upload a new version to resubmit)")
    except InvalidTransition as exc:
        raise ModerationError("invalid_state", str(exc), status=409) from None
    version.refresh_from_db()
    audit_record(actor=moderator, action=f"review.{decision}", target_kind=target.kind, target_id=target.id,
                 target_label=target.label, before={"state": before}, after={"state": version.state},
                 reason=item.outcome_text)
    notification_send(user=version.created_by, subject=f"{target.label}: {item.get_status_display().lower()}",
                      message=_review_message(item, target), url=target.url)
    return item


def _review_message(item: ReviewItem, target: Target) -> str:
    if item.status == ReviewStatus.APPROVED:
        return f"A moderator approved {target.label}; it is published." + (f"\n\n{item.note}" if item.note else "")
    if item.status == ReviewStatus.CHANGES_REQUESTED:
        return (f"A moderator asked for changes to {target.label}:\n\n{item.note}\n\n"
                "Upload a new version; it takes this one's place in the review queue.")
    return f"A moderator rejected {target.label}.\n\nReason: {item.outcome_text}"


@dataclass
class BulkOutcome:
    decided: list[int] = field(default_factory=list)
    refused: dict[int, dict[str, str]] = field(default_factory=dict)


def review_items_decide_bulk(*, item_ids: Iterable[int], moderator: User, decision: str, reason_code: str = "",
                             note: str = "") -> BulkOutcome:
    """Approve or reject many items, each in its own transaction: one refused item (claimed by another
    moderator, already decided) does not hold back the others."""
    if decision not in BULK_DECISIONS:
        raise ModerationError("invalid_decision", f"bulk decisions are {' and '.join(BULK_DECISIONS)}")
    _check_reason(decision, reason_code, note)
    outcome = BulkOutcome()
    for item_id in dict.fromkeys(item_ids):
        try:
            review_item_decide(item_id=item_id, moderator=moderator, decision=decision, reason_code=reason_code,
                               note=note)
        except ModerationError as exc:
            outcome.refused[item_id] = {"code": exc.code, "message": exc.message}
        else:
            outcome.decided.append(item_id)
    return outcome

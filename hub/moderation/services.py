"""Writes for moderation: the review queue, reports, takedowns, bans and notifications.

Every decision is one transaction that changes the target, records the decision, appends to the
audit log and notifies the people concerned (emails leave after the commit).
"""

from __future__ import annotations

import logging
import random
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from hub.accounts.models import User
from hub.accounts.services import user_ban
from hub.catalog.models import Version, VersionState
from hub.catalog.services import InvalidTransition, version_set_state
from hub.core.errors import ServiceError
from hub.core.leases import claim_with_lease, lease_expired
from hub.moderation.audit import audit_record
from hub.moderation.models import (
    Notification,
    RejectReason,
    Report,
    ReportReason,
    ReportStatus,
    Resolution,
    ReviewItem,
    ReviewStatus,
    Takedown,
    TakedownKind,
)
from hub.moderation.selectors import review_claim_is_active
from hub.moderation.targets import TARGET_TYPES, Target, TargetNotFound, target_get, target_of_version

log = logging.getLogger(__name__)

# The decisions a moderator can take on a queue item, and the status each leaves it in.
DECISIONS: dict[str, str] = {
    "approve": ReviewStatus.APPROVED,
    "reject": ReviewStatus.REJECTED,
    "request_changes": ReviewStatus.CHANGES_REQUESTED,
}
BULK_DECISIONS = ("approve", "reject")


class ModerationError(ServiceError):
    """A refused moderation request; `code` is stable (the API returns it), `message` is for people."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


def _target(kind: str, target_id: int, *, visible_to: User | None = None) -> Target:
    try:
        return target_get(kind, target_id, visible_to=visible_to)
    except TargetNotFound as exc:
        raise ModerationError("not_found", str(exc), status=404) from None


def _required(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise ModerationError(f"{what}_required", f"a {what} is required")
    return text


# --- notifications ---------------------------------------------------------------------------------------


def notification_send(*, user: User, subject: str, message: str, url: str = "") -> Notification:
    """An entry in the user's notifications list, and an email once the transaction commits."""
    notification = Notification.objects.create(user=user, subject=subject, message=message, url=url)
    if user.email:
        transaction.on_commit(lambda: _email(user.email, subject, message, url))
    return notification


def _email(address: str, subject: str, message: str, url: str) -> None:
    link = f"\n\n{settings.SITE_URL}{url}" if url else ""
    try:
        send_mail(f"[nomoat] {subject}", message + link, None, [address])
    except (smtplib.SMTPException, OSError):
        # The decision is committed and the notification stored; a mail server outage must not undo either.
        log.exception("could not email %s about %r", address, subject)


def notifications_mark_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# --- the review queue ------------------------------------------------------------------------------------


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
            _required(note, "note")
    if decision == "request_changes":
        _required(note, "note")


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
            _withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator,
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


# --- takedowns -------------------------------------------------------------------------------------------


def _withdraw(target: Target, *, kind: str, by: User | None, reason: str) -> Takedown:
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
def takedown_lift(*, takedown_id: int, moderator: User, reason: str) -> Takedown:
    """Re-publish a target a moderator unpublished (its files were kept). Holds by reports are lifted by
    dismissing the reports instead, so that no report is left open on a published item by accident."""
    reason = _required(reason, "reason")
    takedown = Takedown.objects.select_for_update().filter(pk=takedown_id).first()
    if takedown is None:
        raise ModerationError("not_found", f"no takedown {takedown_id}", status=404)
    if takedown.lifted_at is not None:
        raise ModerationError("already_lifted", f"{takedown.target_label} was already re-published", status=409)
    if takedown.kind == TakedownKind.HIDDEN:
        raise ModerationError("resolve_reports", f"{takedown.target_label} is hidden by reports: resolve them",
                              status=409)
    target = _target(takedown.target_kind, takedown.target_id)
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


# --- reports ---------------------------------------------------------------------------------------------


@transaction.atomic
def report_create(*, reporter: User, kind: str, target_id: int, reason: str, comment: str) -> Report:
    """One open report per user per item. Enough reports from different users hide the item until a
    moderator decides (REPORT_HIDE_THRESHOLD). An item the reporter may not see is not found; owners may not
    report their own (their reports would count toward hiding it)."""
    target = _target(kind, target_id, visible_to=reporter)
    if reason not in ReportReason.values:
        raise ModerationError("invalid_reason", f"reason must be one of {', '.join(ReportReason.values)}")
    comment = _required(comment, "comment")
    if target.owner is not None and target.owner.pk == reporter.pk:
        raise ModerationError("own_item", f"{target.label} is yours: you cannot report your own item")
    if not target.is_published:
        raise ModerationError("not_reportable", f"{target.label} is not published", status=409)
    try:
        with transaction.atomic():
            report = Report.objects.create(reporter=reporter, target_kind=kind, target_id=target.id,
                                           target_label=target.label, target_owner=target.owner, reason=reason,
                                           comment=comment)
    except IntegrityError:
        raise ModerationError("already_reported", f"you already have an open report on {target.label}",
                              status=409) from None
    reporters = (Report.objects.filter(target_kind=kind, target_id=target.id, status=ReportStatus.OPEN)
                 .values("reporter").distinct().count())
    if reporters >= settings.REPORT_HIDE_THRESHOLD:
        _hide(target, reporters)
    return report


def _hide(target: Target, reporters: int) -> None:
    reason = f"reported by {reporters} users"
    if not _target(target.kind, target.id).is_published:
        return  # a concurrent report hid it first
    try:
        with transaction.atomic():
            _withdraw(target, kind=TakedownKind.HIDDEN, by=None, reason=reason)
    except IntegrityError:
        return  # a concurrent report hid it first
    audit_record(actor=None, action="takedown.hide", target_kind=target.kind, target_id=target.id,
                 target_label=target.label, before={"state": "published"}, after={"state": "unpublished"},
                 reason=f"{reason} (threshold {settings.REPORT_HIDE_THRESHOLD})")
    if target.owner:
        notification_send(user=target.owner, subject=f"{target.label} is hidden pending review",
                          message=f"{target.label} was {reason}; it is hidden until a moderator reviews the reports.",
                          url=target.url)


@transaction.atomic
def reports_resolve(*, kind: str, target_id: int, moderator: User, resolution: str, reason: str) -> list[Report]:
    """Decide on an item's open reports, all at once: dismiss them (lifting a hold), unpublish the item,
    or ban its uploader (unpublishing everything they published)."""
    if resolution not in Resolution.values:
        raise ModerationError("invalid_resolution", f"resolution must be one of {', '.join(Resolution.values)}")
    reason = _required(reason, "reason")
    target = _target(kind, target_id)
    reports = list(Report.objects.select_for_update().filter(target_kind=kind, target_id=target.id,
                                                             status=ReportStatus.OPEN).select_related("reporter"))
    if not reports:
        raise ModerationError("no_open_reports", f"{target.label} has no open reports", status=409)
    if resolution == Resolution.BAN:
        _refuse_ban(target.owner, moderator)
    hold = Takedown.objects.filter(target_kind=kind, target_id=target.id, lifted_at__isnull=True).first()
    before = {"published": target.is_published, "open_reports": len(reports), "hold": hold.kind if hold else None}
    if resolution == Resolution.DISMISS:
        if hold and hold.kind == TakedownKind.HIDDEN:
            TARGET_TYPES[kind].restore(target, f"reports dismissed by a moderator: {reason}")
            hold.lifted_by, hold.lifted_at, hold.lift_reason = moderator, timezone.now(), reason
            hold.save()
    else:
        _withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator, reason=reason)
    status = ReportStatus.DISMISSED if resolution == Resolution.DISMISS else ReportStatus.UPHELD
    Report.objects.filter(pk__in=[r.pk for r in reports]).update(
        status=status, resolved_by=moderator, resolved_at=timezone.now(), resolution=resolution,
        resolution_reason=reason)
    action = "report.dismiss" if resolution == Resolution.DISMISS else "takedown.unpublish"
    audit_record(actor=moderator, action=action, target_kind=kind, target_id=target.id, target_label=target.label,
                 before=before, after={"published": _target(kind, target_id).is_published, "open_reports": 0},
                 reason=reason)
    if resolution == Resolution.BAN:
        uploader_ban(user=target.owner, moderator=moderator, reason=reason)
    for report in reports:
        notification_send(user=report.reporter, subject=f"Your report on {target.label}: {status}",
                          message=f"A moderator {status} your report on {target.label}.\n\n{reason}")
    if status == ReportStatus.UPHELD and target.owner:
        notification_send(user=target.owner, subject=f"{target.label} was unpublished",
                          message=f"A moderator unpublished {target.label} after reports.\n\nReason: {reason}",
                          url=target.url)
    return reports


def _refuse_ban(user: User | None, moderator: User) -> None:
    if user is None:
        raise ModerationError("no_uploader", "this item has no uploader to ban")
    if user.pk == moderator.pk or user.is_moderator:
        raise ModerationError("cannot_ban_moderator", "moderators and admins cannot be banned here; an admin can "
                                                      "change their role first", status=403)


def uploader_ban(*, user: User, moderator: User, reason: str) -> list[Target]:
    """Ban an uploader: the account is deactivated and everything they published is unpublished (files kept,
    so each takedown can be lifted). Returns what was unpublished."""
    _refuse_ban(user, moderator)
    user_ban(user=user, by=moderator, reason=reason)
    withdrawn = [t for targets in TARGET_TYPES.values() for t in targets.published_by(user)]
    for target in withdrawn:
        _withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator, reason=f"uploader banned: {reason}")
        audit_record(actor=moderator, action="takedown.unpublish", target_kind=target.kind, target_id=target.id,
                     target_label=target.label, before={"published": True}, after={"published": False},
                     reason=f"uploader banned: {reason}")
    return withdrawn

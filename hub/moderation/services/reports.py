"""Reports: users flag a published item; enough of them hide it until a moderator resolves them."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.accounts.models import User
from hub.audit.services import audit_record
from hub.moderation.models import Report, ReportReason, ReportStatus, Resolution, Takedown, TakedownKind
from hub.moderation.services.bans import refuse_ban, uploader_ban
from hub.moderation.services.notifications import notification_send
from hub.moderation.services.refusals import ModerationError, required_text, target_found
from hub.moderation.services.takedowns import withdraw
from hub.moderation.targets import TARGET_TYPES, Target


@transaction.atomic
def report_create(*, reporter: User, kind: str, target_id: int, reason: str, comment: str) -> Report:
    """One open report per user per item. Enough reports from different users hide the item until a
    moderator decides (REPORT_HIDE_THRESHOLD). An item the reporter may not see is not found; owners may not
    report their own (their reports would count toward hiding it)."""
    target = target_found(kind, target_id, visible_to=reporter)
    if reason not in ReportReason.values:
        raise ModerationError("invalid_reason", f"reason must be one of {', '.join(ReportReason.values)}")
    comment = required_text(comment, "comment")
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
    if not target_found(target.kind, target.id).is_published:
        return  # a concurrent report hid it first
    try:
        with transaction.atomic():
            withdraw(target, kind=TakedownKind.HIDDEN, by=None, reason=reason)
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
    reason = required_text(reason, "reason")
    target = target_found(kind, target_id)
    reports = list(Report.objects.select_for_update().filter(target_kind=kind, target_id=target.id,
                                                             status=ReportStatus.OPEN).select_related("reporter"))
    if not reports:
        raise ModerationError("no_open_reports", f"{target.label} has no open reports", status=409)
    if resolution == Resolution.BAN:
        refuse_ban(target.owner, moderator)
    hold = Takedown.objects.filter(target_kind=kind, target_id=target.id, lifted_at__isnull=True).first()
    before = {"published": target.is_published, "open_reports": len(reports), "hold": hold.kind if hold else None}
    if resolution == Resolution.DISMISS:
        if hold and hold.kind == TakedownKind.HIDDEN:
            TARGET_TYPES[kind].restore(target, f"reports dismissed by a moderator: {reason}")
            hold.lifted_by, hold.lifted_at, hold.lift_reason = moderator, timezone.now(), reason
            hold.save()
    else:
        withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator, reason=reason)
    status = ReportStatus.DISMISSED if resolution == Resolution.DISMISS else ReportStatus.UPHELD
    Report.objects.filter(pk__in=[r.pk for r in reports]).update(
        status=status, resolved_by=moderator, resolved_at=timezone.now(), resolution=resolution,
        resolution_reason=reason)
    action = "report.dismiss" if resolution == Resolution.DISMISS else "takedown.unpublish"
    audit_record(actor=moderator, action=action, target_kind=kind, target_id=target.id, target_label=target.label,
                 before=before, after={"published": target_found(kind, target_id).is_published, "open_reports": 0},
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

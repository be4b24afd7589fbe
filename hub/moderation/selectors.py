"""Reads for moderation: the queue and what a reviewer sees of an item, reports, takedowns (the audit log's are hub.audit.selectors)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.safestring import SafeString

from hub.accounts.models import User
from hub.catalog.diffs import VersionDiff, versions_compare
from hub.catalog.markdown import render_markdown
from hub.catalog.models import Version, VersionFile, VersionState
from hub.moderation.models import (
    BlockedDigest,
    Notification,
    Report,
    ReportStatus,
    ReviewItem,
    ReviewStatus,
    Takedown,
    TakedownKind,
)
from hub.moderation.targets import Target, TargetNotFound, target_get, target_of_version

# The queue's flags: name → (what it means, the condition on ReviewItem).
QUEUE_FLAGS: dict[str, tuple[str, Q]] = {
    "sampled": ("published at once by a trusted uploader, sampled for review", Q(sampled=True)),
    "resubmission": ("resubmitted after changes were requested", Q(replaces__isnull=False)),
    "first_upload": ("the uploader has nothing published yet", Q(first_upload=True)),
    "skipped_checks": ("some validation checks were skipped", Q(skipped_checks__gt=0)),
    "uploader_reported": ("reports against the uploader were upheld before",
                          Q(Exists(Report.objects.filter(target_owner=OuterRef("version__created_by"),
                                                         status=ReportStatus.UPHELD)))),
}


@dataclass(frozen=True)
class QueueFilters:
    kind: str = ""
    base_model: str = ""
    uploader: str = ""
    flag: str = ""


def _review_items() -> QuerySet[ReviewItem]:
    """Items with what a reviewer reads at a glance: related rows, and each flag as `flag_<name>` (see ReviewItem.flags)."""
    flags = {f"flag_{name}": ExpressionWrapper(condition, output_field=BooleanField())
             for name, (_, condition) in QUEUE_FLAGS.items()}
    return ReviewItem.objects.annotate(**flags).select_related(
        "version__repository__owner", "version__base_model", "version__created_by", "claimed_by", "decided_by",
        "replaces__version")


def review_queue(filters: QueueFilters | None = None) -> QuerySet[ReviewItem]:
    """Open items, oldest first. An item leaves the queue with its decision, or when its version moved on
    (e.g. a sampled version that was unpublished after reports)."""
    filters = filters or QueueFilters()
    qs = _review_items().filter(status=ReviewStatus.OPEN).filter(
        Q(version__state=VersionState.PENDING_REVIEW) | Q(sampled=True, version__state=VersionState.PUBLISHED))
    if filters.kind:
        qs = qs.filter(version__repository__kind=filters.kind)
    if filters.base_model:
        qs = qs.filter(version__base_model__name=filters.base_model)
    if filters.uploader:
        qs = qs.filter(version__created_by__username=filters.uploader)
    if filters.flag in QUEUE_FLAGS:
        qs = qs.filter(**{f"flag_{filters.flag}": True})
    return qs.order_by("queued_at", "pk")


def review_item_get(item_id: int) -> ReviewItem:
    item = _review_items().filter(pk=item_id).first()
    if item is None:
        raise Http404(f"no review item {item_id}")
    return item


def review_claim_is_active(item: ReviewItem) -> bool:
    return bool(item.claimed_by_id and item.lease_expires_at and item.lease_expires_at > timezone.now())


def review_outcome(version: Version) -> ReviewItem | None:
    """The moderator's decision on a version, for the uploader's version page."""
    return ReviewItem.objects.filter(version=version).exclude(status=ReviewStatus.OPEN).first()


def review_eval_results(version: Version) -> list[dict]:
    """Extension point filled by the evals app: the version's eval scores (suite, version, metric, score, base,
    delta), and its runs that did not finish with their state and reason. None until it is published."""
    from hub.evals.selectors.cards import version_eval_rows  # this extension point is all moderation knows of evals

    return version_eval_rows(version)


def version_diff(version: Version) -> VersionDiff | None:
    """What changed since the repository's previous version, whatever its state; None for a first version."""
    previous = (Version.objects.filter(repository=version.repository_id, number__lt=version.number)
                .order_by("-number").first())
    return versions_compare(previous, version) if previous is not None else None


@dataclass(frozen=True)
class UploaderHistory:
    user: User
    versions: dict[str, int]  # state → count
    reports: dict[str, int]  # report status → count, for reports against the uploader's items
    decisions: list[ReviewItem]  # the latest review decisions on their versions


def uploader_history(user: User) -> UploaderHistory:
    versions = dict(Version.objects.filter(created_by=user).values_list("state").annotate(n=Count("pk")))
    reports = dict(Report.objects.filter(target_owner=user).values_list("status").annotate(n=Count("pk")))
    decisions = (ReviewItem.objects.filter(version__created_by=user).exclude(status=ReviewStatus.OPEN)
                 .select_related("version__repository__owner").order_by("-decided_at")[:10])
    return UploaderHistory(
        user=user,
        versions={state: versions.get(state, 0) for state in (VersionState.PUBLISHED, VersionState.PENDING_REVIEW,
                                                               VersionState.REJECTED, VersionState.UNPUBLISHED)},
        reports={status: reports.get(status, 0) for status in ReportStatus.values},
        decisions=list(decisions),
    )


@dataclass(frozen=True)
class ReviewBundle:
    """Everything a moderator reads before deciding on one queue item."""

    item: ReviewItem
    target: Target
    card_html: SafeString
    files: list[VersionFile]
    eval_results: list[dict]
    diff: VersionDiff | None
    history: UploaderHistory
    claim_active: bool

    @property
    def version(self) -> Version:
        return self.item.version

    @property
    def checks(self) -> list[dict]:
        return self.item.version.validation_report.get("checks", [])


def review_bundle(item: ReviewItem) -> ReviewBundle:
    version = item.version
    return ReviewBundle(
        item=item,
        target=target_of_version(version),
        card_html=render_markdown(version.card_text),
        files=list(version.files.select_related("blob")),
        eval_results=review_eval_results(version),
        diff=version_diff(version),
        history=uploader_history(version.created_by),
        claim_active=review_claim_is_active(item),
    )


# --- reports and takedowns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportedItem:
    """An item's open reports, decided together."""

    kind: str
    id: int
    label: str
    target: Target | None  # None when the item no longer exists
    reports: list[Report]
    hidden: bool

    @property
    def first_reported_at(self) -> datetime:
        return self.reports[0].created_at


def reported_items() -> list[ReportedItem]:
    """Items with open reports: hidden ones first, then the most reported, then the longest waiting."""
    reports = (Report.objects.filter(status=ReportStatus.OPEN).select_related("reporter")
               .order_by("target_kind", "target_id", "created_at"))
    hidden = set(Takedown.objects.filter(lifted_at__isnull=True, kind=TakedownKind.HIDDEN)
                 .values_list("target_kind", "target_id"))
    items = []
    for (kind, target_id), group in itertools.groupby(reports, key=lambda r: (r.target_kind, r.target_id)):
        group = list(group)
        try:
            target = target_get(kind, target_id)
        except TargetNotFound:
            target = None
        items.append(ReportedItem(kind=kind, id=target_id, label=group[0].target_label, target=target,
                                  reports=group, hidden=(kind, target_id) in hidden))
    return sorted(items, key=lambda i: (not i.hidden, -len(i.reports), i.first_reported_at))


def reports_list(*, status: str = ReportStatus.OPEN, kind: str = "", target_id: int | None = None) -> QuerySet[Report]:
    qs = Report.objects.select_related("reporter", "resolved_by")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(target_kind=kind)
    if target_id is not None:
        qs = qs.filter(target_id=target_id)
    return qs


def report_get(report_id: int) -> Report:
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        raise Http404(f"no report {report_id}")
    return report


def reports_recently_resolved(limit: int = 25) -> QuerySet[Report]:
    return Report.objects.exclude(status=ReportStatus.OPEN).select_related("resolved_by").order_by("-resolved_at")[:limit]


def takedowns_active() -> QuerySet[Takedown]:
    return Takedown.objects.filter(lifted_at__isnull=True).select_related("created_by")


# --- notifications ---------------------------------------------------------------------------------------


def notifications_of(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)


def notifications_unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def blocked_digest_reason(sha256: str) -> str | None:
    """Why this content may not enter the hub again (its item was taken down here or at its origin), or None."""
    blocked = BlockedDigest.objects.filter(sha256=sha256).first()
    return f"it is on this hub's denylist of taken-down files ({blocked.reason})" if blocked else None

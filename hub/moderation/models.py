"""What moderation keeps: the review queue, reports, takedowns and notifications (the audit log
is the `hub.audit` app's).

Reports and takedowns name their target by a kind and an id ("adapter" 12 is version 12 of an
adapter) rather than by a foreign key, so a new kind of target (stacks) is a new entry in
`hub.moderation.targets`, not a schema change.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.catalog.models import Version


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class RejectReason(models.TextChoices):
    BROKEN = "broken", "Does not load or does not work"
    LICENSE = "license", "License missing or incompatible"
    CARD = "card", "Card incomplete or misleading"
    BASE_MODEL = "base_model", "Wrong or mislabelled base model"
    HARMFUL = "harmful", "Harmful content"
    SPAM = "spam", "Spam or duplicate"
    OTHER = "other", "Other"


class ReviewItem(models.Model):
    """One version's passage through the queue: its claim, and the moderator's decision."""

    version = models.OneToOneField(Version, on_delete=models.CASCADE, related_name="review")
    # Published at once (trusted uploader) and drawn for a second look after publication.
    sampled = models.BooleanField(default=False)
    # The item sent back for changes that this resubmission takes the place of (and the queue position of).
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="replaced_by")
    queued_at = models.DateTimeField(default=timezone.now)
    # Flags fixed when the item enters the queue, so the queue can filter on them in any database.
    first_upload = models.BooleanField(default=False)
    skipped_checks = models.PositiveIntegerField(default=0)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    lease_expires_at = models.DateTimeField(null=True, blank=True)  # the claim lapses then (hub.core.leases)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=20, choices=RejectReason.choices, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["queued_at", "pk"]
        indexes = [models.Index(fields=["status", "queued_at"])]
        permissions = [
            ("review_version", "Can review versions: claim, approve, reject, request changes"),
            ("skip_review", "Publishes without waiting for review"),
        ]

    def __str__(self) -> str:
        return f"review of {self.version}"

    @property
    def flags(self) -> list[str]:
        """The queue flags (hub.moderation.selectors.QUEUE_FLAGS) set on this item, as the selectors annotate them."""
        return [name.removeprefix("flag_") for name, value in vars(self).items() if name.startswith("flag_") and value]

    @property
    def outcome_text(self) -> str:
        """The decision as the uploader reads it."""
        reason = self.get_reason_code_display() if self.reason_code else ""
        return ": ".join(part for part in (reason, self.note) if part)


class ReportReason(models.TextChoices):
    MALWARE = "malware", "Malware or unsafe files"
    LICENSE = "license", "License violation"
    HARMFUL = "harmful", "Harmful content"
    SPAM = "spam", "Spam"
    MISLABELLED_BASE = "mislabelled_base", "Mislabelled base model"
    BROKEN = "broken", "Broken"
    OTHER = "other", "Other"


class ReportStatus(models.TextChoices):
    OPEN = "open", "Open"
    DISMISSED = "dismissed", "Dismissed"
    UPHELD = "upheld", "Upheld"


class Resolution(models.TextChoices):
    DISMISS = "dismiss", "Dismiss the reports"
    UNPUBLISH = "unpublish", "Unpublish the item"
    BAN = "ban", "Ban the uploader (and unpublish all their items)"


class Report(models.Model):
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reports_made")
    target_kind = models.CharField(max_length=16)  # a key of hub.moderation.targets.TARGET_TYPES
    target_id = models.PositiveBigIntegerField()
    target_label = models.CharField(max_length=200)  # the target's name when it was reported
    # Who published the target: the uploader's history counts reports against them.
    target_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                     related_name="reports_against")
    reason = models.CharField(max_length=20, choices=ReportReason.choices)
    comment = models.TextField()
    status = models.CharField(max_length=12, choices=ReportStatus.choices, default=ReportStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=12, choices=Resolution.choices, blank=True)
    resolution_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["reporter", "target_kind", "target_id"],
                                    condition=models.Q(status="open"), name="one_open_report_per_user_per_item"),
        ]
        indexes = [models.Index(fields=["target_kind", "target_id", "status"])]
        permissions = [("resolve_report", "Can resolve reports: dismiss, unpublish, ban, re-publish")]

    def __str__(self) -> str:
        return f"report on {self.target_label} by {self.reporter_id}"


class TakedownKind(models.TextChoices):
    HIDDEN = "hidden", "Hidden by reports"
    UNPUBLISHED = "unpublished", "Unpublished by a moderator"


class Takedown(models.Model):
    """Why a target stopped being served. Its files stay stored, so lifting it re-publishes the target."""

    target_kind = models.CharField(max_length=16)
    target_id = models.PositiveBigIntegerField()
    target_label = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=TakedownKind.choices)
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")  # null: hidden automatically by reports
    created_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["target_kind", "target_id"], condition=models.Q(lifted_at__isnull=True),
                                    name="one_active_takedown_per_item"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.target_label}"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    subject = models.CharField(max_length=200)
    message = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"to {self.user_id}: {self.subject}"


class BlockedDigest(models.Model):
    """A sha256 that no upload path accepts: the files of items taken down here or at their origin."""

    sha256 = models.CharField(max_length=64, unique=True)
    reason = models.TextField()
    origin = models.URLField(max_length=500, blank=True)  # the object whose takedown blocked it
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"blocked {self.sha256[:12]}"

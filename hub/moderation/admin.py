"""Admin views of moderation data, read-only (as the audit log's, in hub.audit.admin); decisions go through services."""

from django.contrib import admin

from hub.core.readonly_admin import ReadOnlyAdmin
from hub.moderation.models import BlockedDigest, Notification, Report, ReviewItem, Takedown


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ("version", "status", "sampled", "queued_at", "claimed_by", "decided_by", "decided_at")
    list_filter = ("status", "sampled")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("target_label", "reason", "reporter", "status", "created_at", "resolution")
    list_filter = ("status", "reason", "target_kind")


@admin.register(Takedown)
class TakedownAdmin(ReadOnlyAdmin):
    list_display = ("target_label", "kind", "reason", "created_by", "created_at", "lifted_at")
    list_filter = ("kind",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("user", "subject", "created_at", "read_at")


@admin.register(BlockedDigest)
class BlockedDigestAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "reason", "origin", "created_at")
    search_fields = ("sha256", "origin")

"""Admin views of moderation data. The audit log is read-only here as everywhere; decisions go through services."""

from django.contrib import admin
from django.http import HttpRequest

from hub.moderation.models import AuditEntry, Notification, Report, ReviewItem, Takedown


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never edited in the admin: changes to these rows must come with an audit entry."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "target_kind", "target_label", "reason")
    list_filter = ("action", "target_kind")
    search_fields = ("actor_name", "target_label", "reason")


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

"""The audit log in the admin: viewable, never added to, changed or deleted there."""

from django.contrib import admin

from hub.audit.models import AuditEntry
from hub.core.readonly_admin import ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "target_kind", "target_label", "reason")
    list_filter = ("action", "target_kind")
    search_fields = ("actor_name", "target_label", "reason")

from django.contrib import admin

from hub.catalog.models import BaseModel, Blob, Repository, Tag, Version, VersionOrigin
from hub.core.readonly_admin import ReadOnlyAdmin


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "parameter_count", "license", "created_at")


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("kind", "owner", "name", "downloads", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner__username")


@admin.register(Version)
class VersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "state", "created_at", "published_at")
    list_filter = ("state",)
    # Published versions are immutable: state changes go through services (and the moderation queue).
    readonly_fields = ("repository", "number", "state", "state_reason", "commit_sha", "card_text", "card",
                       "validation_report", "stats", "published_at")


admin.site.register(Blob)
admin.site.register(Tag)


@admin.register(VersionOrigin)
class VersionOriginAdmin(ReadOnlyAdmin):
    """Mirrored versions (hub.federation writes them): where each came from and how far its files were fetched."""

    list_display = ("version", "object_id", "peer_url", "fetch_state", "received_at")
    list_filter = ("fetch_state",)
    search_fields = ("object_id",)

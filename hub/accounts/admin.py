from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from hub.accounts.models import ApiToken, User


@admin.register(User)
class HubUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("nomoat", {"fields": ("role", "bio")}))
    list_display = ("username", "email", "role", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    # Roles change through the moderation pages (groups synced, audit log written), never here.
    readonly_fields = ("role",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("digest", "prefix")

from django.contrib import admin

from hub.stacks.models import StackBuild


@admin.register(StackBuild)
class StackBuildAdmin(admin.ModelAdmin):
    list_display = ("recipe_hash", "base_model", "method", "output", "state", "progress", "downloads", "created_at")
    list_filter = ("state", "method", "output")
    readonly_fields = ("recipe_hash", "recipe", "manifest")

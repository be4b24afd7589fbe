from django.contrib import admin

from hub.training.models import TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "owner", "into", "state", "step", "total_steps", "created_at")
    list_filter = ("state",)
    search_fields = ("into", "owner__username", "spec_hash")
    readonly_fields = [field.name for field in TrainingJob._meta.fields]

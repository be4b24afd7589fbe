"""Eval runs in the admin: read-only (results come from workers; re-runs from the moderators' button or API)."""

from django.contrib import admin

from hub.evals.models import EvalRun


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ["id", "suite", "suite_version", "subject_kind", "runtime", "base_model", "version", "state",
                    "attempts", "finished_at"]
    list_filter = ["state", "subject_kind", "runtime", "suite"]
    search_fields = ["suite", "subject_hash", "failure_reason"]
    list_select_related = ["base_model", "version__repository__owner"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

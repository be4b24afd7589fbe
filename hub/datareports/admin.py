from django.contrib import admin

from hub.datareports.models import Contamination, DataReport


@admin.register(DataReport)
class DataReportAdmin(admin.ModelAdmin):
    list_display = ["content_hash", "report_version", "state", "attempts", "finished_at"]
    list_filter = ["state", "report_version"]
    readonly_fields = ["versions"]


@admin.register(Contamination)
class ContaminationAdmin(admin.ModelAdmin):
    list_display = ["train_version", "eval_version", "eval_split", "state", "overlap", "rows"]
    list_filter = ["state"]

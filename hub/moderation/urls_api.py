"""/api/v1/ routes of the moderation app (names share the `api` namespace, prefixed `moderation-`)."""

from django.urls import path

from hub.moderation import api

ITEM = "moderation/items/<int:item_id>"
urlpatterns = [
    path("moderation/queue", api.Queue.as_view(), name="moderation-queue"),
    path("moderation/items/bulk", api.QueueBulk.as_view(), name="moderation-bulk"),
    path(ITEM, api.QueueItem.as_view(), name="moderation-item"),
    path(f"{ITEM}/claim", api.QueueItemClaim.as_view(), name="moderation-claim"),
    path(f"{ITEM}/approve", api.QueueItemDecision.as_view(), {"decision": "approve"}, name="moderation-approve"),
    path(f"{ITEM}/reject", api.QueueItemDecision.as_view(), {"decision": "reject"}, name="moderation-reject"),
    path(f"{ITEM}/request-changes", api.QueueItemDecision.as_view(), {"decision": "request_changes"},
         name="moderation-request-changes"),
    path("reports", api.Reports.as_view(), name="reports"),
    path("reports/<int:report_id>/resolve", api.ReportResolve.as_view(), name="report-resolve"),
    path("moderation/takedowns", api.Takedowns.as_view(), name="moderation-takedowns"),
    path("moderation/takedowns/<int:takedown_id>/republish", api.TakedownRepublish.as_view(),
         name="moderation-republish"),
    path("moderation/audit", api.Audit.as_view(), name="moderation-audit"),
    path("moderation/audit.csv", api.AuditCsv.as_view(), name="moderation-audit-csv"),
]

"""Page routes of the moderation app."""

from django.urls import path

from hub.moderation import views

ITEM = "moderation/items/<int:item_id>"
urlpatterns = [
    path("moderation/", views.queue, name="moderation-queue"),
    path("moderation/items/bulk", views.queue_bulk, name="moderation-bulk"),
    path(ITEM, views.queue_item, name="moderation-item"),
    path(f"{ITEM}/claim", views.queue_claim, name="moderation-claim"),
    path(f"{ITEM}/approve", views.queue_decide, {"decision": "approve"}, name="moderation-approve"),
    path(f"{ITEM}/reject", views.queue_decide, {"decision": "reject"}, name="moderation-reject"),
    path(f"{ITEM}/request-changes", views.queue_decide, {"decision": "request_changes"},
         name="moderation-request-changes"),
    path("moderation/reports", views.reports, name="moderation-reports"),
    path("moderation/reports/<str:kind>/<int:target_id>/resolve", views.reports_decide, name="moderation-resolve"),
    path("moderation/takedowns", views.takedowns, name="moderation-takedowns"),
    path("moderation/takedowns/<int:takedown_id>/republish", views.takedown_republish, name="moderation-republish"),
    path("moderation/users/<str:username>", views.uploader, name="moderation-uploader"),
    path("moderation/users/<str:username>/role", views.uploader_role, name="moderation-role"),
    path("moderation/audit", views.audit, name="moderation-audit"),
    path("report/<str:kind>/<int:target_id>", views.report_new, name="report-new"),
    path("notifications/", views.notifications, name="notifications"),
]

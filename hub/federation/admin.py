"""Admin views of federation data, read-only; changes go through the services (the /federation/ page, the API,
`manage.py federation`)."""

from django.contrib import admin

from hub.core.readonly_admin import ReadOnlyAdmin
from hub.federation.models import Delivery, Follow, Follower, InboxActivity, OutboxActivity, Peer


@admin.register(Peer)
class PeerAdmin(ReadOnlyAdmin):
    list_display = ("base_url", "state", "mode", "review", "takedowns", "last_delivery_at", "failures")
    list_filter = ("state", "mode")


@admin.register(Follow)
class FollowAdmin(ReadOnlyAdmin):
    list_display = ("actor_url", "state", "created_at", "caught_up_at")
    list_filter = ("state",)


@admin.register(Follower)
class FollowerAdmin(ReadOnlyAdmin):
    list_display = ("actor_url", "user", "state", "created_at")
    list_filter = ("state",)


@admin.register(InboxActivity)
class InboxActivityAdmin(ReadOnlyAdmin):
    list_display = ("activity_id", "type", "actor_url", "state", "received_at")
    list_filter = ("state", "type")


@admin.register(OutboxActivity)
class OutboxActivityAdmin(ReadOnlyAdmin):
    list_display = ("activity_id", "type", "user", "public", "created_at")
    list_filter = ("type", "public")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("activity", "inbox_url", "state", "attempts", "delivered_at")
    list_filter = ("state",)

"""Routes of federation: ActivityPub (see hub/federation/actors.py for the URL shapes), WebFinger, NodeInfo, and
the admin page /federation/."""

from django.urls import path

from hub.federation import objects_views, views

USER = "federation/users/<str:username>"
urlpatterns = [
    path(".well-known/webfinger", views.webfinger, name="federation-webfinger"),
    path(".well-known/nodeinfo", views.nodeinfo_discovery, name="federation-nodeinfo-discovery"),
    path("nodeinfo/2.1", views.nodeinfo, name="federation-nodeinfo"),
    path("federation/", views.peers_page, name="federation-peers"),
    path("federation/peers/<int:peer_id>/policy", views.peer_policy, name="federation-peer-policy"),
    path("federation/peers/<str:action>", views.peers_action, name="federation-peers-action"),
    path("federation/inbox", views.inbox, {"shared": True}, name="federation-shared-inbox"),
    path("federation/activities/<uuid:activity_uuid>", views.activity, name="federation-activity"),
    path("federation/context.jsonld", objects_views.context, name="federation-context"),
    path("federation/actor", views.actor, name="federation-hub-actor"),
    path("federation/actor/inbox", views.inbox, name="federation-hub-inbox"),
    path("federation/actor/outbox", views.outbox, name="federation-hub-outbox"),
    path("federation/actor/followers", views.followers, name="federation-hub-followers"),
    path("federation/actor/following", views.following, name="federation-hub-following"),
    path(USER, views.actor, name="federation-user-actor"),
    path(f"{USER}/inbox", views.inbox, name="federation-user-inbox"),
    path(f"{USER}/outbox", views.outbox, name="federation-user-outbox"),
    path(f"{USER}/followers", views.followers, name="federation-user-followers"),
    path(f"{USER}/following", views.following, name="federation-user-following"),
]

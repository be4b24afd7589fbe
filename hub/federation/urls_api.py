"""/api/v1/federation/ routes (names share the `api` namespace, prefixed `federation-`)."""

from django.urls import path

from hub.federation import api

urlpatterns = [
    path("federation/follows", api.Follows.as_view(), name="federation-follows"),
    path("federation/follows/<int:follow_id>", api.FollowDetail.as_view(), name="federation-follow"),
    path("federation/peers", api.Peers.as_view(), name="federation-peers"),
    path("federation/peers/<int:peer_id>", api.PeerDetail.as_view(), name="federation-peer"),
    path("federation/items", api.RemoteItems.as_view(), name="federation-items"),
    path("federation/items/<int:item_id>/files/<path:path>", api.RemoteItemFile.as_view(),
         name="federation-item-file"),
]

"""/api/v1/federation/: follows (ours of other hubs) and peers (their policies), for hub administrators only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.auth import TokenScopePermission
from hub.federation import selectors, services
from hub.federation.models import Follow, Peer, PeerMode, PeerState, TakedownPolicy


class AdminPermission(permissions.BasePermission):
    """Hub administrators; anonymous callers are asked to authenticate (401), others refused (403)."""

    message = "hub administrators only"

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        return bool(request.user.is_superuser)


class FederationApi(APIView):
    permission_classes = [TokenScopePermission, AdminPermission]


class FollowOut(serializers.ModelSerializer):
    peer = serializers.CharField(source="peer.base_url")

    class Meta:
        model = Follow
        fields = ["id", "peer", "namespace", "actor_url", "state", "activity_id", "created_at", "updated_at",
                  "caught_up_at", "last_error"]


class FollowIn(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="a peer's base URL, user@host:port, or an actor URL")


class PeerOut(serializers.ModelSerializer):
    class Meta:
        model = Peer
        fields = ["id", "base_url", "actor_url", "inbox_url", "shared_inbox_url", "software", "state", "mode",
                  "namespaces_allow", "namespaces_block", "licenses", "max_bytes", "review", "takedowns",
                  "created_at", "last_delivery_at", "last_error", "failures"]


class PeerIn(serializers.Serializer):
    state = serializers.ChoiceField(PeerState.choices, required=False)
    mode = serializers.ChoiceField(PeerMode.choices, required=False)
    namespaces_allow = serializers.ListField(child=serializers.CharField(max_length=150), required=False)
    namespaces_block = serializers.ListField(child=serializers.CharField(max_length=150), required=False)
    licenses = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    max_bytes = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    review = serializers.BooleanField(required=False)
    takedowns = serializers.ChoiceField(TakedownPolicy.choices, required=False)


class Follows(FederationApi):
    @extend_schema(responses=FollowOut(many=True))
    def get(self, request: Request) -> Response:
        return Response(FollowOut(selectors.follows_all(), many=True).data)

    @extend_schema(request=FollowIn, responses={202: FollowOut})
    def post(self, request: Request) -> Response:
        given = FollowIn(data=request.data)
        given.is_valid(raise_exception=True)
        follow = services.follow_create(url=given.validated_data["url"], by=request.user)
        return Response(FollowOut(follow).data,
                        status=status.HTTP_200_OK if follow.state == "accepted" else status.HTTP_202_ACCEPTED)


class FollowDetail(FederationApi):
    @extend_schema(responses=FollowOut)
    def get(self, request: Request, follow_id: int) -> Response:
        return Response(FollowOut(get_object_or_404(selectors.follows_all(), pk=follow_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, follow_id: int) -> Response:
        services.follow_delete(follow=get_object_or_404(selectors.follows_all(), pk=follow_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class Peers(FederationApi):
    @extend_schema(responses=PeerOut(many=True))
    def get(self, request: Request) -> Response:
        return Response(PeerOut(selectors.peers_all(), many=True).data)


class PeerDetail(FederationApi):
    @extend_schema(responses=PeerOut)
    def get(self, request: Request, peer_id: int) -> Response:
        return Response(PeerOut(get_object_or_404(selectors.peers_all(), pk=peer_id)).data)

    @extend_schema(request=PeerIn, responses=PeerOut)
    def patch(self, request: Request, peer_id: int) -> Response:
        peer = get_object_or_404(selectors.peers_all(), pk=peer_id)
        given = PeerIn(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        if given.validated_data.get("state") == PeerState.BLOCKED:
            services.peer_block(url=peer.base_url)
        peer = services.peer_update(peer=peer, changes=dict(given.validated_data))
        return Response(PeerOut(peer).data)

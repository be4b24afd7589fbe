"""/api/v1/federation/: follows (ours of other hubs) and peers (their policies), for hub administrators only; and,
for anyone, the items listed here whose files are held elsewhere (peers followed for metadata or on demand)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.auth import TokenScopePermission
from hub.api.pagination import HubCursorPagination
from hub.api.schema import api_error
from hub.catalog.models import VersionState
from hub.federation import selectors, services
from hub.federation.mirroring import MirrorRefused, parse_version, remote_item_requested
from hub.federation.models import Follow, Peer, PeerMode, PeerState, RemoteItem, RemoteItemState, TakedownPolicy

ON_DEMAND_RETRY_SECONDS = 10  # a small version is fetched and validated again within seconds


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


class RemoteItems(APIView):
    """Items listed here whose files are held elsewhere, each with its origin; every file entry says whether this
    hub holds it (`held_here`) and where it is (`origin_url`); `url` downloads it through this hub."""

    permission_classes = [permissions.AllowAny]
    cursor_ordering = ("-received_at",)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        pages = HubCursorPagination()
        page = pages.paginate_queryset(selectors.remote_items_listed(), request, view=self)
        return pages.get_paginated_response([remote_item_out(item) for item in page])


def remote_item_out(item: RemoteItem) -> dict:
    try:
        obj = parse_version(item.activity.get("object"))
    except MirrorRefused:  # listed before a stricter check: shown by id only
        return {"id": item.pk, "object_id": item.object_id, "mode": item.mode, "state": item.state, "files": []}
    local = selectors.remote_item_version(item)
    held = local is not None and local.state == VersionState.PUBLISHED
    return {
        "id": item.pk, "object_id": item.object_id, "kind": obj.kind, "name": f"{obj.owner}/{obj.name}",
        "version": obj.number, "mode": item.mode, "state": item.state, "received_at": item.received_at,
        "origin": {"hub": obj.origin, "url": obj.repository_url, "owner": obj.owner, "name": obj.name,
                   "version": obj.number},
        "local": f"{local.repository.full_name}@{local.number}" if held else None,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "held_here": held, "origin_url": f.url,
                   "url": reverse("api:federation-item-file", args=[item.pk, f.path])}
                  for f in (*obj.files, *obj.signed)],
    }


class RemoteItemFile(APIView):
    """A file of a listed item: redirected to its origin (metadata), or fetched here on the first request and then
    served from here (on_demand: 503 with Retry-After until it is fetched and validated)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={302: None, 404: api_error("no such item or file"),
                              410: api_error("taken down at its origin"), 422: api_error("refused here"),
                              503: api_error("being fetched on demand: try again after Retry-After")})
    def get(self, request: Request, item_id: int, path: str) -> Response:
        item = get_object_or_404(RemoteItem, pk=item_id)
        if item.state == RemoteItemState.REMOVED:
            return _error(410, "taken_down", f"{item.object_id} was taken down at its origin")
        try:
            obj = parse_version(item.activity.get("object"))
        except MirrorRefused as exc:
            return _error(422, exc.code, exc.message)
        file = next((f for f in (*obj.files, *obj.signed) if f.path == path), None)
        if file is None:
            return _error(404, "not_found", f"{path}: not a file of {obj.owner}/{obj.name} v{obj.number}; "
                                            f"expected one of {', '.join(f.path for f in obj.files)}")
        local = selectors.remote_item_version(item)
        if local is not None and local.state == VersionState.PUBLISHED:
            repo = local.repository
            return _redirect(reverse(f"api:{repo.kind}-file", args=[repo.owner.username, repo.name, local.number,
                                                                   path]))
        if item.mode == PeerMode.METADATA:
            return _redirect(file.url)  # held at its origin
        if local is not None and local.state == VersionState.REJECTED:
            return _error(422, "refused", f"{item.object_id} was fetched and refused here: {local.state_reason}")
        remote_item_requested(item_id=item.pk)
        response = _error(503, "fetching", f"{obj.owner}/{obj.name} v{obj.number} is being fetched from "
                                           f"{obj.origin} and validated here; try again in {ON_DEMAND_RETRY_SECONDS} s")
        response["Retry-After"] = str(ON_DEMAND_RETRY_SECONDS)
        return response


def _error(status_code: int, code: str, message: str) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=status_code)


def _redirect(url: str) -> Response:
    return Response(status=status.HTTP_302_FOUND, headers={"Location": url})

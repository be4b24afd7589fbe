"""Token endpoints: create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.models import ApiToken, TokenScope
from hub.accounts.selectors import api_tokens_of
from hub.accounts.services import api_token_create, api_token_revoke
from hub.api.errors import ApiError
from hub.api.fields import TextField
from hub.api.schema import BEARER_REQUIRED


class TokenCreateIn(serializers.Serializer):
    username = TextField(required=False)
    password = TextField(required=False, write_only=True, style={"input_type": "password"})
    name = TextField(max_length=100, default="api")
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)


class TokenOut(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="the token itself; shown only in this response")

    class Meta(TokenOut.Meta):
        fields = [*TokenOut.Meta.fields, "token"]


class TokenListCreate(APIView):
    # Creating a token with a password must work for anonymous clients, so the scope
    # permission (which requires a signed-in user for writes) does not apply here.
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=TokenOut(many=True), auth=BEARER_REQUIRED)
    def get(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise ApiError("not_authenticated", "sign in or send a token to list your tokens", status_code=401)
        return Response(TokenOut(api_tokens_of(request.user), many=True).data)

    @extend_schema(request=TokenCreateIn, responses={201: TokenCreatedOut})
    def post(self, request: Request) -> Response:
        data = TokenCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated and not isinstance(request.auth, ApiToken) else None
        if "username" in data.validated_data or user is None:
            user = authenticate(request._request, username=data.validated_data.get("username", ""),
                                password=data.validated_data.get("password", ""))
            if user is None:
                raise ApiError("invalid_credentials", "username or password is wrong", status_code=401)
        issued = api_token_create(user=user, name=data.validated_data["name"], scope=data.validated_data["scope"])
        body = TokenOut(issued.token).data | {"token": issued.raw}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevoke(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(api_tokens_of(request.user), pk=token_id)
        api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)

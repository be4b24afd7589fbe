"""Token endpoints (create, shown once; list; revoke) and the user directory.

Token creation is throttled per account and per address (and every password check in it by the sign-in backend).
The directory shows each user's role only to moderators: nobody else learns who the administrators are.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.backends import token_creation_check
from hub.accounts.models import ApiToken, Role, TokenScope, User
from hub.accounts.selectors import api_tokens_of, users_active
from hub.accounts.services import api_token_create, api_token_revoke
from hub.api.errors import ApiError
from hub.api.fields import TextField
from hub.api.schema import BEARER_REQUIRED, api_error


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

    @extend_schema(request=TokenCreateIn, responses={
        201: TokenCreatedOut, 429: api_error("too many sign-in attempts or new tokens for this account or address; "
                                             "`Retry-After` says when to try again")})
    def post(self, request: Request) -> Response:
        data = TokenCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated and not isinstance(request.auth, ApiToken) else None
        if "username" in data.validated_data or user is None:
            user = authenticate(request._request, username=data.validated_data.get("username", ""),
                                password=data.validated_data.get("password", ""))
            if user is None:
                raise ApiError("invalid_credentials", "username or password is wrong", status_code=401)
        token_creation_check(request, user)
        issued = api_token_create(user=user, name=data.validated_data["name"], scope=data.validated_data["scope"])
        body = TokenOut(issued.token).data | {"token": issued.raw}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevoke(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(api_tokens_of(request.user), pk=token_id)
        api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="the user's role; shown to moderators only (else null)")

    class Meta:
        model = User
        fields = ["username", "role", "bio", "date_joined"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, obj: User) -> str | None:
        viewer = self.context["request"].user
        return obj.role if viewer.is_authenticated and viewer.is_moderator else None


class UserList(generics.ListAPIView):
    serializer_class = UserOut
    cursor_ordering = ("username",)

    def get_queryset(self):
        return users_active()


class UserDetail(APIView):
    @extend_schema(responses=UserOut)
    def get(self, request: Request, username: str) -> Response:
        user = get_object_or_404(users_active(), username=username)
        return Response(UserOut(user, context={"request": request}).data)

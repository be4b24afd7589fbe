"""DRF hooks: `Authorization: Bearer <token>` and the read/write scope of a token."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from hub.accounts.models import ApiToken, TokenScope
from hub.accounts.selectors import api_token_by_raw
from hub.accounts.services import api_token_touch


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if not parts:  # only whitespace, which str.split() takes to include "\xa0" and "\x85"
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        token = api_token_by_raw(parts[1])
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("the API token is unknown or revoked")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenScopePermission(permissions.BasePermission):
    """Reads are open (views narrow them further); writes need a signed-in user and a write token."""

    message = "this API token is read-only; create a token with the 'write' scope"
    open_reads = True  # the OpenAPI schema (hub/api/schema.py) lists anonymous access for its safe methods

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        token = request.auth
        return not (isinstance(token, ApiToken) and token.scope != TokenScope.WRITE)

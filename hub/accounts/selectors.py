"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from hub.accounts.models import MIRROR_SEPARATOR, ApiToken, User
from hub.accounts.services import token_digest


def api_token_by_raw(raw: str) -> ApiToken | None:
    return ApiToken.objects.select_related("user").filter(digest=token_digest(raw), revoked_at__isnull=True).first()


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def users_active() -> QuerySet[User]:
    """The hub's own active accounts (mirrored namespaces, `owner__host`, are not accounts: see MIRROR_SEPARATOR)."""
    return User.objects.filter(is_active=True).exclude(username__contains=MIRROR_SEPARATOR).order_by("username")

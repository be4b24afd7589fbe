"""Writes for accounts: users, roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from hub.accounts.models import ApiToken, Role, TokenScope, User

TOKEN_PREFIX = "nmt_"  # noqa: S105 - a public prefix, not a secret


def token_digest(raw: str) -> str:
    """Tokens are 256-bit random strings, so a plain sha256 is a safe, indexable digest."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown to the user once, never stored


def user_create(*, username: str, password: str | None, email: str = "", role: str = Role.USER) -> User:
    user = User(username=username, email=email, role=role, is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def user_set_role(*, user: User, role: str) -> User:
    user.role = Role(role)
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    return user


def api_token_create(*, user: User, name: str, scope: str = TokenScope.READ) -> IssuedToken:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, scope=TokenScope(scope), prefix=raw[: len(TOKEN_PREFIX) + 6], digest=token_digest(raw)
    )
    return IssuedToken(token=token, raw=raw)


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@transaction.atomic
def api_token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token to keep reads from writing on every request."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)

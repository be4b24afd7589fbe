"""Writes for accounts: users, roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hub.accounts.models import ApiToken, Role, TokenScope, User
from hub.audit.services import audit_record

TOKEN_PREFIX = "nmt_"  # noqa: S105 - a public prefix, not a secret


def token_digest(raw: str) -> str:
    """Tokens are 256-bit random strings, so a plain sha256 is a safe, indexable digest."""
    return hashlib.sha256(raw.encode()).hexdigest()


# Each role above `user` is a Django group holding that role's permissions. The role field stays the source
# of truth; user_create and user_set_role keep the groups in step with it.
MODERATOR_PERMISSIONS = ("moderation.skip_review", "moderation.review_version", "moderation.resolve_report",
                         "audit.view_auditentry")
ROLE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    Role.TRUSTED: ("trusted uploaders", ("moderation.skip_review",)),
    Role.MODERATOR: ("moderators", MODERATOR_PERMISSIONS),
    Role.ADMIN: ("admins", (*MODERATOR_PERMISSIONS, "accounts.change_user")),
}


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
    _sync_role_groups(user)
    return user


def _role_group(role: str) -> Group:
    """The role's group with exactly the role's permissions (created on first use, so a flushed database heals)."""
    name, perms = ROLE_GROUPS[role]
    group, _ = Group.objects.get_or_create(name=name)
    wanted = Q()
    for perm in perms:
        app_label, codename = perm.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.set(Permission.objects.filter(wanted))
    return group


def _sync_role_groups(user: User) -> None:
    user.groups.remove(*Group.objects.filter(name__in=[name for name, _ in ROLE_GROUPS.values()]))
    if user.role in ROLE_GROUPS:
        user.groups.add(_role_group(user.role))


@transaction.atomic
def user_set_role(*, user: User, role: str, by: User | None = None, reason: str = "") -> User:
    """Change a role (and its group); every change is in the audit log, with the reason a person gave."""
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}")
    if by is not None and by.pk == user.pk:
        raise ValueError("nobody can change their own role")
    if by is not None and not reason.strip():
        raise ValueError("a reason is required to change a role")
    before = user.role
    if before == role:
        return user
    user.role = Role(role)
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    _sync_role_groups(user)
    audit_record(actor=by, action="user.set_role", target_kind="user", target_id=user.pk, target_label=user.username,
                 before={"role": before}, after={"role": user.role}, reason=reason)
    return user


@transaction.atomic
def user_ban(*, user: User, by: User, reason: str) -> User:
    """Deactivate an account: it can no longer sign in, and its API tokens stop working (auth checks is_active)."""
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit_record(actor=by, action="user.ban", target_kind="user", target_id=user.pk, target_label=user.username,
                     before={"is_active": True}, after={"is_active": False}, reason=reason)
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


# --- sign-up -------------------------------------------------------------------------------------------------------


@transaction.atomic
def user_sign_up(*, username: str, email: str, password: str) -> User:
    """A new account, inactive until its email address is confirmed (`user_confirm_email`)."""
    user = user_create(username=username, password=password, email=email)
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    return user


def sign_up_confirmation_send(*, user: User, confirm_url: str) -> None:
    """The confirmation email, through Django's email backend (the console in development, locmem in tests)."""
    send_mail(
        subject="Confirm your nomoat account",
        message=f"Hello {user.username},\n\nconfirm your email address to start using nomoat:\n\n{confirm_url}\n\n"
                "If you did not sign up, ignore this message: the account stays inactive.\n",
        from_email=None, recipient_list=[user.email],
    )


def user_confirm_email(*, user: User) -> User:
    if not user.is_active:
        User.objects.filter(pk=user.pk).update(is_active=True)
        user.is_active = True
    return user

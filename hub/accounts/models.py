"""Users with a role, and personal API tokens stored only as their sha256."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

# First path segments the hub's own routes own: a user with one of these names would have
# repositories whose URLs (`<owner>/<name>/resolve/...`, `stacks/<hash>`) mean something else.
RESERVED_USERNAMES = frozenset({"adapters", "datasets", "stacks", "models", "api", "admin"})
# Namespaces mirrored from other hubs are named `<owner>__<origin host-port>` (hub.federation.mirroring): a local
# username never contains the separator, so a mirrored namespace can never collide with a local one. Not "--":
# huggingface_hub refuses a repo id with "--" or "..", and mirrored repositories must work with it.
MIRROR_SEPARATOR = "__"


def validate_username_not_reserved(value: str) -> None:
    if value.lower() in RESERVED_USERNAMES:
        raise ValidationError("“%(value)s” is reserved for the hub's own pages; choose another username.",
                              code="reserved", params={"value": value})
    if MIRROR_SEPARATOR in value:
        raise ValidationError("username: “%(value)s” contains “__”, which is reserved for namespaces mirrored from "
                              "other hubs; use at most one '_' in a row.", code="reserved", params={"value": value})


class Role(models.TextChoices):
    USER = "user", "User"
    TRUSTED = "trusted", "Trusted uploader"
    MODERATOR = "moderator", "Moderator"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    username = models.CharField(
        "username", max_length=150, unique=True,
        help_text="150 characters or fewer. Letters, digits and @/./+/-/_ only.",
        validators=[UnicodeUsernameValidator(), validate_username_not_reserved],
        error_messages={"unique": "A user with that username already exists."},
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    bio = models.TextField(blank=True)

    @property
    def is_moderator(self) -> bool:
        return self.is_superuser or self.role in {Role.MODERATOR, Role.ADMIN}

    @property
    def is_trusted(self) -> bool:
        return self.is_moderator or self.role == Role.TRUSTED


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user.username}:{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

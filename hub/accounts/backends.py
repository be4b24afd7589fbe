"""Password sign-in, throttled per account and per address before any password is hashed; and the limit on new
API tokens, which the API and the profile page both apply.

Every password check goes through Django's `authenticate()` (the sign-in page, the admin, token creation with a
password), so the limit lives here, once: each attempt counts against the account named and the caller's address,
and past either limit the attempt is refused with 429 and Retry-After without spending PBKDF2's CPU on it.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from hub.core.throttling import client_address, rate_check


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            rate_check("signin_per_address", client_address(request), what="sign-in attempts from this address")
        if username:
            rate_check("signin_per_account", f"user:{str(username).lower()}", what="sign-in attempts for this account")
        return super().authenticate(request, username=username, password=password, **kwargs)


def token_creation_check(request, user) -> None:
    """Count a new API token against the account's and the caller's address's limits (429 past either)."""
    rate_check("tokens_per_address", client_address(request), what="new tokens from this address")
    rate_check("tokens_per_account", f"user:{user.pk}", what="new tokens for this account")

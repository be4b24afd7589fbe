"""API tokens: shown once, stored hashed, scoped, revocable; and the settings' production guard."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import ApiToken, Role, User
from hub.accounts.services import api_token_create, token_digest

pytestmark = pytest.mark.django_db


def test_token_from_username_and_password_is_shown_once_and_stored_hashed(make_user):
    make_user("alice", password="s3cret-password-1")
    client = APIClient()
    response = client.post("/api/v1/auth/tokens", {"username": "alice", "password": "s3cret-password-1",
                                                     "name": "laptop", "scope": "write"}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    stored = ApiToken.objects.get(name="laptop")
    assert stored.digest == token_digest(raw) and raw not in stored.digest
    assert not ApiToken.objects.filter(digest=raw).exists()
    listing = APIClient(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/auth/tokens")
    assert listing.status_code == 200
    assert "token" not in listing.json()[0] and listing.json()[0]["prefix"] == raw[:10]


def test_wrong_password_gets_a_clear_json_error(make_user):
    make_user("alice", password="s3cret-password-1")
    response = APIClient().post("/api/v1/auth/tokens", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_bearer_token_authenticates_and_revoked_or_unknown_tokens_are_refused(make_user):
    alice = make_user("alice")
    issued = api_token_create(user=alice, name="t", scope="read")
    client = APIClient(headers={"Authorization": f"Bearer {issued.raw}"})
    assert client.get("/api/v1/auth/tokens").status_code == 200
    assert client.delete(f"/api/v1/auth/tokens/{issued.token.pk}").status_code == 403  # read scope cannot write
    writer = api_token_create(user=alice, name="w", scope="write")
    assert APIClient(headers={"Authorization": f"Bearer {writer.raw}"}).delete(
        f"/api/v1/auth/tokens/{issued.token.pk}").status_code == 204
    refused = client.get("/api/v1/auth/tokens")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"
    assert APIClient(headers={"Authorization": "Bearer nmt_forged"}).get("/api/v1/base-models").status_code == 401


def test_a_user_cannot_revoke_someone_elses_token(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    alices = api_token_create(user=alice, name="a", scope="write")
    bobs = api_token_create(user=bob, name="b", scope="write")
    response = APIClient(headers={"Authorization": f"Bearer {bobs.raw}"}).delete(f"/api/v1/auth/tokens/{alices.token.pk}")
    assert response.status_code == 404
    assert ApiToken.objects.get(pk=alices.token.pk).revoked_at is None


def test_profile_page_creates_and_revokes_tokens(client, make_user):
    make_user("alice", password="s3cret-password-1")
    client.login(username="alice", password="s3cret-password-1")
    page = client.post("/profile/", {"name": "cli", "scope": "write"})
    token = ApiToken.objects.get(name="cli")
    assert token.prefix in page.content.decode()
    client.post(f"/profile/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_profile_requires_login(client):
    assert client.get("/profile/").status_code == 302


def test_createsuperuser_noinput_works_for_scripts():
    env = {**os.environ, "DJANGO_SUPERUSER_PASSWORD": "a-strong-admin-pw-42", "DJANGO_SUPERUSER_USERNAME": "root",
           "DJANGO_SUPERUSER_EMAIL": "root@example.com"}
    from django.core.management import call_command

    os.environ.update({k: v for k, v in env.items() if k.startswith("DJANGO_SUPERUSER")})
    call_command("createsuperuser", interactive=False)
    assert User.objects.get(username="root").is_superuser


@pytest.mark.parametrize("username", ["stacks", "Adapters", "datasets"])
def test_usernames_the_hubs_routes_own_are_refused(username, monkeypatch):
    from django.core.exceptions import ValidationError
    from django.core.management import CommandError, call_command

    from hub.accounts.services import user_create

    with pytest.raises(ValidationError, match="reserved for the hub's own pages"):
        user_create(username=username, password="a-strong-pw-42")
    for key, value in {"DJANGO_SUPERUSER_USERNAME": username, "DJANGO_SUPERUSER_PASSWORD": "a-strong-admin-pw-42",
                       "DJANGO_SUPERUSER_EMAIL": "x@example.com"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(CommandError, match="reserved"):
        call_command("createsuperuser", interactive=False)
    assert not User.objects.filter(username__iexact=username).exists()


@pytest.mark.parametrize(("env", "message"), [
    ({"NOMOAT_ENV": "production"}, "SECRET_KEY"),
    ({"NOMOAT_ENV": "production", "SECRET_KEY": "x" * 50, "DEBUG": "true"}, "DEBUG"),
])
def test_production_refuses_unsafe_settings(env, message):
    result = subprocess.run([sys.executable, "-c", "import django; from django.conf import settings; settings.DEBUG"],
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings", **env},
                            capture_output=True, text=True)
    assert result.returncode != 0 and message in result.stderr


def test_production_starts_with_a_real_secret():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings", "NOMOAT_ENV": "production",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "hub.example.com"}
    result = subprocess.run([sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "False"


def test_roles():
    user = User(username="m", role=Role.MODERATOR)
    assert user.is_moderator and user.is_trusted
    assert not User(username="u").is_moderator

"""Security headers and production settings: a Content-Security-Policy with nonces on every page (no inline script
runs without one), HSTS and the HTTPS redirect in production, `check --deploy` clean, weak secret keys refused, and
roles in the user directory for moderators only."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from tests.conftest import REPO_ROOT

PAGES = ["/", "/login/", "/adapters/", "/datasets/", "/stacks/", "/leaderboards/", "/no-such-page/",
         "/upload/adapter", "/stacks/new", "/profile/", "/api/v1/docs/", "/api/v1/redoc/"]


class Scripts(HTMLParser):
    """Inline <script> and <style> elements (their nonce attribute) and inline event handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[tuple[str, str | None]] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        data_block = tag == "script" and names.get("type") == "application/json"  # json_script: never run
        if tag in {"script", "style"} and not names.get("src") and not data_block:
            self.inline.append((tag, names.get("nonce")))
        self.handlers += [f"<{tag} {name}=…>" for name, _ in attrs if name.startswith("on")]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_policy_and_no_inline_script_runs_without_its_nonce(client, make_user, path):
    client.force_login(make_user("alice"))
    response = client.get(path, follow=True)
    assert response.status_code in {200, 404}, (path, response.status_code)
    directives = policy(response)
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    html = Scripts()
    html.feed(response.content.decode())
    assert not html.handlers, f"{path}: inline event handlers cannot carry a nonce: {html.handlers}"
    for tag, nonce in html.inline:
        if tag == "style" and "'unsafe-inline'" in directives["style-src"]:
            continue  # a page's own, commented exception for styles (ReDoc's styled-components); never for scripts
        assert nonce, f"{path}: an inline <{tag}> without a nonce"
        assert f"'nonce-{nonce}'" in directives[f"{tag}-src"], f"{path}: <{tag}> nonce is not in the policy"


@pytest.mark.django_db
def test_each_response_gets_its_own_nonce(client):
    first, second = (re.search(r"'nonce-([^']+)'", client.get("/stacks/new", follow=True)["Content-Security-Policy"])
                     for _ in range(2))
    assert first and second and first[1] != second[1]


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    # As a deployment has it: without the suite's DJANGO_ALLOW_ASYNC_UNSAFE (for Playwright), which check --deploy
    # rightly refuses.
    env = {key: value for key, value in os.environ.items()
           if key not in {"DEBUG", "SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return {**env, "DJANGO_SETTINGS_MODULE": "hub.settings", "NOMOAT_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "hub.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://hub.example.com", "NOMOAT_DATA_DIR": str(tmp_path), **extra}


def test_check_deploy_is_clean_in_production(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO_ROOT, env=production_env(tmp_path), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


PRODUCTION_REQUESTS = """
from django.test import Client
import django
django.setup()
plain = Client().get("/api/v1/no-such-route", HTTP_HOST="hub.example.com")
print(plain.status_code, plain.get("Location"))
tls = Client().get("/api/v1/no-such-route", HTTP_HOST="hub.example.com", HTTP_X_FORWARDED_PROTO="https")
print(tls.status_code, tls.get("Strict-Transport-Security"))
"""


def test_production_redirects_to_https_and_sends_hsts(tmp_path):
    result = subprocess.run([sys.executable, "-c", PRODUCTION_REQUESTS], cwd=REPO_ROOT, env=production_env(tmp_path),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    plain, tls = result.stdout.split("\n")[:2]
    assert plain == "301 https://hub.example.com/api/v1/no-such-route"
    assert tls == "404 max-age=31536000; includeSubDomains"


@pytest.mark.parametrize(("key", "reason"), [
    ("k" * 64, "only 1 distinct characters"),
    ("abcdef" * 10, "about 155 bits"),
    ("django-insecure-" + secrets.token_urlsafe(40), "django-insecure"),
    (secrets.token_urlsafe(20), "fewer than 50"),
])
def test_production_refuses_a_secret_key_with_too_little_entropy(tmp_path, key, reason):
    result = subprocess.run([sys.executable, "-c", "from django.conf import settings; settings.DEBUG"],
                            cwd=REPO_ROOT, env=production_env(tmp_path, SECRET_KEY=key), capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and reason in result.stderr, result.stderr[-2000:]


def test_a_throttle_rate_that_is_not_a_rate_is_refused_at_start_up(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings", "THROTTLE_SIGNIN_PER_ACCOUNT": "ten a minute"}
    result = subprocess.run([sys.executable, "-c", "from django.conf import settings; settings.DEBUG"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "THROTTLE_SIGNIN_PER_ACCOUNT='ten a minute': expected `N/second`" in result.stderr


@pytest.mark.django_db
def test_roles_in_the_user_directory_are_shown_to_moderators_only(make_user):
    make_user("root", role=Role.ADMIN), make_user("mod", role=Role.MODERATOR), make_user("plain")

    def roles(client: APIClient) -> dict[str, str | None]:
        listed = {u["username"]: u["role"] for u in client.get("/api/v1/users").json()["results"]}
        assert client.get("/api/v1/users/root").json()["role"] == listed["root"]
        return listed

    assert set(roles(APIClient()).values()) == {None}
    plain = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=make_user('viewer'), name='r').raw}"})
    assert set(roles(plain).values()) == {None}
    moderator = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=make_user('m2', role=Role.MODERATOR), name='r').raw}"})
    assert roles(moderator) == {"root": "admin", "mod": "moderator", "plain": "user", "viewer": "user",
                                "m2": "moderator"}

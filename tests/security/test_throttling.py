"""Throttles answer 429 with Retry-After once a limit is crossed, per account, per address and per user, counted
in the real shared cache (Redis under `make test`, files on the embedded default). Each test sets the limits it
crosses; the suite's other tests run with every limit raised (tests/conftest.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import User
from hub.accounts.services import api_token_create
from hub.core.throttling import Throttled
from hub.stacks.models import StackBuild
from hub.stacks.services import stack_request

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def limits(settings):
    def set_limits(**rates: str) -> None:
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **rates}

    return set_limits


def client_at(address: str = "10.0.0.1", **headers: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address, headers=headers)


def writer(user, address: str = "10.0.0.1") -> APIClient:
    token = api_token_create(user=user, name="w", scope="write").raw
    return client_at(address, Authorization=f"Bearer {token}")


def token_attempt(client: APIClient, username: str, password: str):
    return client.post("/api/v1/auth/tokens", {"username": username, "password": password, "name": "t"}, format="json")


def assert_throttled(response, names: str) -> None:
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    error = response.json()["error"]
    assert error["code"] == "throttled" and names in error["message"], error
    assert error["details"]["retry_after"] == retry_after


def test_wrong_passwords_for_one_account_are_throttled_even_from_many_addresses(make_user, limits):
    limits(signin_per_account="3/minute")
    make_user("alice")
    for i in range(3):
        assert token_attempt(client_at(f"10.0.1.{i}"), "alice", "wrong").status_code == 401
    assert_throttled(token_attempt(client_at("10.0.1.9"), "alice", "wrong"), "sign-in attempts for this account")
    # The right password too, until the window turns: the limit is on attempts, before any password is checked.
    assert_throttled(token_attempt(client_at("10.0.1.9"), "ALICE", PASSWORD), "this account")
    # Another account is not held back by alice's.
    make_user("bob")
    assert token_attempt(client_at("10.0.1.9"), "bob", PASSWORD).status_code == 201


def test_one_address_guessing_many_accounts_is_throttled(make_user, limits):
    limits(signin_per_address="3/minute")
    for name in ("a1", "a2", "a3", "a4"):
        make_user(name)
    for name in ("a1", "a2", "a3"):
        assert token_attempt(client_at("10.0.2.1"), name, "wrong").status_code == 401
    assert_throttled(token_attempt(client_at("10.0.2.1"), "a4", "wrong"), "sign-in attempts from this address")
    assert token_attempt(client_at("10.0.2.2"), "a4", PASSWORD).status_code == 201


def test_the_sign_in_page_is_throttled_with_a_page(client, make_user, limits):
    limits(signin_per_account="2/minute")
    make_user("carol")
    for _ in range(2):
        assert client.post("/login/", {"username": "carol", "password": "wrong"}).status_code == 200  # the form again
    page = client.post("/login/", {"username": "carol", "password": PASSWORD})
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1
    assert "text/html" in page["Content-Type"] and b"sign-in attempts for this account" in page.content
    assert "_auth_user_id" not in client.session


def test_token_creation_is_throttled_per_account_and_per_address(make_user, limits):
    limits(tokens_per_account="2/hour", tokens_per_address="3/hour")
    make_user("dave"), make_user("erin")
    for _ in range(2):
        assert token_attempt(client_at("10.0.3.1"), "dave", PASSWORD).status_code == 201
    assert_throttled(token_attempt(client_at("10.0.3.2"), "dave", PASSWORD), "new tokens for this account")
    assert token_attempt(client_at("10.0.3.1"), "erin", PASSWORD).status_code == 201  # address: its 3rd
    assert_throttled(token_attempt(client_at("10.0.3.1"), "erin", PASSWORD), "new tokens from this address")


def test_uploads_and_upload_sessions_are_throttled_per_user(make_user, limits):
    limits(uploads_per_user="2/hour", upload_sessions_per_user="2/hour")
    frank, gina = make_user("frank"), make_user("gina")
    client = writer(frank)
    for _ in range(2):  # refused uploads count too: the limit is on requests, checked before the body is read
        assert client.post("/api/v1/adapters/frank/x/versions", {}, format="multipart").status_code == 400
    assert_throttled(client.post("/api/v1/adapters/frank/x/versions", {}, format="multipart"), "uploads")
    for _ in range(2):
        assert client.post("/api/v1/uploads", {"filename": "a.bin", "size": 10}, format="json").status_code == 201
    assert_throttled(client.post("/api/v1/uploads", {"filename": "a.bin", "size": 10}, format="json"),
                     "upload sessions")
    other = writer(gina)
    assert other.post("/api/v1/uploads", {"filename": "a.bin", "size": 10}, format="json").status_code == 201


def test_anonymous_reads_are_throttled_per_address(make_user, limits):
    limits(anonymous_reads_per_address="3/minute")
    anonymous = client_at("10.0.4.1")
    for _ in range(3):
        assert anonymous.get("/api/v1/adapters").status_code == 200
    assert_throttled(anonymous.get("/api/v1/base-models"), "anonymous requests from this address")
    hf = anonymous.get("/api/models")  # the HF-compatible routes too, in the Hub's error format
    assert hf.status_code == 429 and int(hf["Retry-After"]) >= 1 and "anonymous requests" in hf.json()["error"]
    assert client_at("10.0.4.2").get("/api/v1/adapters").status_code == 200
    assert writer(make_user("hana"), "10.0.4.1").get("/api/v1/adapters").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(settings, limits):
    settings.TRUSTED_PROXY_COUNT = 1
    limits(anonymous_reads_per_address="2/minute")
    proxy = "10.0.5.1"
    for _ in range(2):
        assert client_at(proxy, **{"X-Forwarded-For": "203.0.113.7"}).get("/api/v1/adapters").status_code == 200
    assert client_at(proxy, **{"X-Forwarded-For": "203.0.113.7"}).get("/api/v1/adapters").status_code == 429
    # A client's own X-Forwarded-For entry (left of the proxy's) does not buy it a fresh count.
    spoofed = client_at(proxy, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert spoofed.get("/api/v1/adapters").status_code == 429
    assert client_at(proxy, **{"X-Forwarded-For": "203.0.113.8"}).get("/api/v1/adapters").status_code == 200


@pytest.fixture
def adapter(make_user, make_version, tiny_base_model, make_adapter):
    owner = make_user("ivan")
    folder = make_adapter(rank=4, alpha=8)
    make_version(owner, "sql", base_model=tiny_base_model,
                 files={p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    return owner


def recipe(weight: float) -> dict:
    return {"base_model": "nomoat/tiny-llama", "adapters": [{"adapter": "ivan/sql", "weight": weight}]}


def test_concurrent_stack_builds_are_capped_per_user_and_shared_builds_do_not_count(adapter, settings):
    settings.STACK_BUILDS_CONCURRENT_PER_USER = 2
    # Plain `django_db`: on_commit never fires, so these builds stay queued (no worker takes them).
    first, _ = stack_request(user=adapter, request=recipe(0.5))
    stack_request(user=adapter, request=recipe(0.6))
    with pytest.raises(Throttled, match=r"2 stack builds queued or running.*\(2\)"):
        stack_request(user=adapter, request=recipe(0.7))
    shared, created = stack_request(user=adapter, request=recipe(0.5))  # an identical recipe shares its build
    assert shared.pk == first.pk and not created
    response = writer(adapter).post("/api/v1/stacks", recipe(0.8), format="json")
    assert_throttled(response, "stack builds queued or running")
    assert StackBuild.objects.count() == 2


def test_new_stack_builds_per_hour_are_capped_per_user(adapter, limits):
    limits(stack_builds_per_user="2/hour")
    client = writer(adapter)
    for weight in (0.1, 0.2):
        assert client.post("/api/v1/stacks", recipe(weight), format="json").status_code == 202
    assert_throttled(client.post("/api/v1/stacks", recipe(0.3), format="json"), "new stack builds")
    assert StackBuild.objects.count() == 2


def test_tokens_made_on_the_profile_page_count_against_the_same_limit(client, make_user, limits):
    limits(tokens_per_account="1/hour")
    client.force_login(make_user("jane"))
    assert client.post("/profile/", {"name": "laptop", "scope": "read"}).status_code == 200
    page = client.post("/profile/", {"name": "phone", "scope": "read"})
    assert page.status_code == 429 and b"new tokens for this account" in page.content


def test_sign_ups_are_throttled_per_address_with_a_page(client, limits):
    limits(signups_per_address="2/hour")
    for n in range(2):
        page = client.post("/signup/", {"username": f"new{n}", "email": f"new{n}@example.com",
                                        "password1": "a-long-enough-passphrase", "password2": "a-long-enough-passphrase"})
        assert page.status_code == 200 and b"new%d@example.com" % n in page.content
    refused = client.post("/signup/", {"username": "new9", "email": "new9@example.com",
                                       "password1": "a-long-enough-passphrase", "password2": "a-long-enough-passphrase"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert b"sign-ups from this address" in refused.content
    assert not User.objects.filter(username="new9").exists()


def test_with_the_cache_unreachable_anonymous_reads_pass_and_sign_in_does_not(adapter, settings):
    # Nothing listens on port 1: every cache call is refused, as during a Redis outage.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    anonymous = client_at("10.0.6.1")
    assert anonymous.get("/api/v1/adapters").status_code == 200
    download = anonymous.get("/api/v1/adapters/ivan/sql/versions/1/files/adapter_config.json")
    assert download.status_code == 200 and b"lora" in b"".join(download.streaming_content).lower()
    # The sign-in limit is what stops password guessing: without its count the attempt is refused, not let in.
    refused = token_attempt(anonymous, "ivan", PASSWORD)
    assert refused.status_code == 503 and int(refused["Retry-After"]) >= 1, refused.content
    assert refused.json()["error"]["code"] == "cache_unavailable"

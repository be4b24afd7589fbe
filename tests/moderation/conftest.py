"""People with each role, and versions put into the queue through the real validation service."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role, User
from hub.catalog.models import Version, VersionState
from hub.catalog.services import version_record_validation

PASSING_REPORT = {
    "kind": "adapter",
    "ok": True,
    "checks": [
        {"name": "weights_format", "passed": True, "message": "safetensors only", "file": "adapter_model.safetensors",
         "field": "", "skipped": False},
        {"name": "shapes_match_base", "passed": False, "message": "skipped: no base model chosen", "file": "",
         "field": "", "skipped": True},
    ],
    "stats": {"rank": 4, "alpha": 8},
}


@pytest.fixture
def people(make_user) -> dict[str, User]:
    """alice uploads (the owner), bob is another user, tina a trusted uploader; mod and root moderate."""
    return {
        "alice": make_user("alice"),
        "bob": make_user("bob"),
        "tina": make_user("tina", role=Role.TRUSTED),
        "mod": make_user("mod", role=Role.MODERATOR),
        "root": make_user("root", role=Role.ADMIN),
    }


@pytest.fixture
def validated(make_version) -> Callable[..., Version]:
    """A version that passed validation, recorded by the service workers use (so it enters the queue as in life)."""

    def make(owner: User, name: str, **kwargs) -> Version:
        version = make_version(owner, name, state=VersionState.VALIDATING, **kwargs)
        return version_record_validation(version=version, report=PASSING_REPORT)

    return make


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def error_code(response) -> str:
    return response.json()["error"]["code"]

"""Seeding a fresh hub (what `make run` does first) creates only what the hub's own rules accept."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from hub.accounts.models import Role, User
from hub.catalog.management.commands.seed_hub import DEMO_USERS, demo_password
from hub.catalog.models import BaseModel


@pytest.mark.django_db
@pytest.mark.embedded
def test_seeding_a_fresh_hub_creates_valid_users_who_can_sign_in(client) -> None:
    call_command("seed_hub", skip_smollm2=True)
    call_command("seed_hub", skip_smollm2=True)  # idempotent: a second `make run` reuses what is there
    assert BaseModel.objects.filter(name="nomoat/tiny-llama").count() == 1
    assert {u.username: u.role for u in User.objects.all()} == {"hubadmin": Role.ADMIN, "demo": Role.TRUSTED}
    for username in DEMO_USERS:
        User.objects.get(username=username).full_clean()  # the rules sign-up applies
        assert client.login(username=username, password=demo_password(username))
        client.logout()

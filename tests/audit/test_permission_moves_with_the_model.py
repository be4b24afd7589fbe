"""The audit log moved from moderation to its own app: groups that held `moderation.view_auditentry` keep the
permission as `audit.view_auditentry` (audit's migration 0002), and a moderator still reaches the audit pages."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from hub.accounts.models import Role

pytestmark = pytest.mark.django_db
relabel = importlib.import_module("hub.audit.migrations.0002_permissions_follow_the_model").relabel


def group_holding_the_old_permission(*, new_exists: bool) -> Group:
    """A database from before the move: the content type under `moderation`, a group holding its permission."""
    if not new_exists:
        ContentType.objects.filter(app_label="audit", model="auditentry").delete()
    old = ContentType.objects.create(app_label="moderation", model="auditentry")
    permission = Permission.objects.create(content_type=old, codename="view_auditentry", name="Can view audit entry")
    group = Group.objects.create(name="old moderators")
    group.permissions.add(permission)
    return group


@pytest.mark.parametrize("new_exists", [False, True], ids=["relabelled", "merged"])
def test_a_group_keeps_its_audit_permission_under_the_new_label(new_exists: bool) -> None:
    group = group_holding_the_old_permission(new_exists=new_exists)
    if new_exists:  # the new permission was created meanwhile (post_migrate), the group does not hold it yet
        assert not group.permissions.filter(content_type__app_label="audit").exists()
    relabel("moderation", "audit")(apps, None)
    ContentType.objects.clear_cache()
    held = [f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(pk=group.pk).permissions.all()]
    assert held == ["audit.view_auditentry"]
    assert not ContentType.objects.filter(app_label="moderation", model="auditentry").exists()


def test_moderators_see_the_audit_log_and_users_do_not(make_user) -> None:
    moderator, user = make_user("mod", role=Role.MODERATOR), make_user("someone")
    assert moderator.has_perm("audit.view_auditentry") and not user.has_perm("audit.view_auditentry")
    client = Client()
    client.force_login(moderator)
    page = client.get("/moderation/audit")
    assert page.status_code == 200
    assert 'href="/moderation/audit"' in client.get("/moderation/").content.decode()  # the nav link, by permission
    client.force_login(user)
    assert client.get("/moderation/audit").status_code == 403

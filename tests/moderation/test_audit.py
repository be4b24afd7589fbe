"""The audit log: what it records, browsing and CSV export, and that nothing can change or delete an entry."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.test import Client

from hub.accounts.models import Role
from hub.accounts.services import user_set_role
from hub.audit.models import AuditEntry, AuditLogImmutable
from hub.audit.services import audit_record
from tests.moderation.conftest import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(people) -> AuditEntry:
    return audit_record(actor=people["mod"], action="review.approve", target_kind="adapter", target_id=7,
                        target_label="alice/tool v1", before={"state": "pending_review"},
                        after={"state": "published"}, reason="looks right")


def test_the_application_cannot_change_or_delete_an_entry(entry):
    entry.reason = "rewritten"
    with pytest.raises(AuditLogImmutable):
        entry.save()
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.bulk_update([entry], ["reason"])
    assert AuditEntry.objects.get(pk=entry.pk).reason == "looks right"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database-level guard is a PostgreSQL trigger")
@pytest.mark.parametrize("sql", ["UPDATE moderation_auditentry SET reason = 'rewritten'",
                                 "DELETE FROM moderation_auditentry"])
def test_the_database_refuses_updates_and_deletes_from_anyone(entry, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).reason == "looks right"


def test_the_admin_shows_entries_read_only(entry, people):
    admin = Client()
    admin.force_login(people["root"])
    assert admin.get("/admin/audit/auditentry/").status_code == 200
    change = admin.get(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert admin.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"reason": "x"}).status_code == 403
    assert admin.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/admin/audit/auditentry/add/").status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).reason == "looks right"


def test_role_changes_are_logged_and_keep_groups_in_step(people):
    tina = people["tina"]
    assert list(tina.groups.values_list("name", flat=True)) == ["trusted uploaders"]
    user_set_role(user=tina, role=Role.MODERATOR, by=people["root"], reason="reviews carefully")
    assert list(tina.groups.values_list("name", flat=True)) == ["moderators"]
    tina = type(tina).objects.get(pk=tina.pk)  # permissions are cached per instance
    assert tina.has_perm("moderation.review_version") and not tina.has_perm("accounts.change_user")
    entry = AuditEntry.objects.get(action="user.set_role")
    assert (entry.actor, entry.target_label, entry.before, entry.after, entry.reason) == (
        people["root"], "tina", {"role": "trusted"}, {"role": "moderator"}, "reviews carefully")
    with pytest.raises(ValueError, match="reason"):
        user_set_role(user=tina, role=Role.USER, by=people["root"])
    assert Group.objects.get(name="admins").permissions.filter(codename="change_user").exists()


def test_moderators_browse_filter_and_export_the_log(entry, people):
    audit_record(actor=None, action="takedown.hide", target_kind="adapter", target_id=8, target_label="=HYPERLINK(1)",
                 reason="reported by 3 users")
    client = Client()
    client.force_login(people["mod"])
    html = client.get("/moderation/audit", {"action": "review.approve"}).content.decode()
    assert "alice/tool v1" in html and "looks right" in html and "reported by 3 users" not in html
    assert "/api/v1/moderation/audit.csv?action=review.approve" in html
    export = client.get("/api/v1/moderation/audit.csv", HTTP_ACCEPT="text/csv")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["takedown.hide", "review.approve"]
    assert rows[0]["actor"] == "system" and rows[0]["target_label"] == "'=HYPERLINK(1)"  # no formula in a spreadsheet
    assert rows[1]["before"] == '{"state": "pending_review"}' and rows[1]["reason"] == "looks right"
    listed = api(people["mod"]).get("/api/v1/moderation/audit", {"actor": "mod"}).json()["results"]
    assert [e["action"] for e in listed] == ["review.approve"]

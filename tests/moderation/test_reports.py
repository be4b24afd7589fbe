"""Reports and takedowns: reporting, the hide threshold, dismissing, unpublishing (reversibly) and bans."""

from __future__ import annotations

import pytest
from django.test import Client

from hub.accounts.models import TokenScope
from hub.accounts.services import api_token_create
from hub.audit.models import AuditEntry
from hub.catalog.blobstore import get_blob_store
from hub.catalog.models import Version, VersionState
from hub.moderation.models import Notification, Report, ReportStatus, Takedown, TakedownKind
from hub.moderation.services.reports import report_create
from tests.moderation.conftest import api, error_code

pytestmark = pytest.mark.django_db
FILE = "/api/v1/adapters/alice/tool/versions/1/files/adapter_model.safetensors"


@pytest.fixture
def tool(people, make_version) -> Version:
    return make_version(people["alice"], "tool")


def report(user, **body):
    return api(user).post("/api/v1/reports", {"kind": "adapter", "name": "alice/tool", "reason": "broken",
                                              "comment": "does not load", **body}, format="json")


def resolve(user, target: Version, resolution: str, reason: str):
    first = Report.objects.filter(target_id=target.pk, status=ReportStatus.OPEN).first()
    return api(user).post(f"/api/v1/reports/{first.pk}/resolve", {"resolution": resolution, "reason": reason},
                          format="json")


def test_any_signed_in_user_reports_a_published_item_once(people, tool, make_version):
    created = report(people["bob"])
    assert created.status_code == 201, created.content
    assert created.json()["target"] == {"kind": "adapter", "id": tool.pk, "label": "alice/tool v1"}
    again = report(people["bob"], reason="spam")
    assert again.status_code == 409 and error_code(again) == "already_reported"
    assert error_code(report(people["tina"], comment=" ")) == "comment_required"
    assert error_code(report(people["tina"], name="alice/nothing")) == "not_found"
    make_version(people["alice"], "pending", state=VersionState.PENDING_REVIEW)
    assert error_code(report(people["tina"], name="alice/pending", version=1)) == "not_found"  # hidden from tina
    assert error_code(report(people["mod"], name="alice/pending", version=1)) == "not_reportable"
    # Through the page, from the version page's Report button.
    client = Client()
    client.force_login(people["tina"])
    assert f"/report/adapter/{tool.pk}" in client.get("/adapters/alice/tool").content.decode()
    assert client.post(f"/report/adapter/{tool.pk}", {"reason": "license", "comment": "CC-BY-NC data"}).status_code == 302
    assert client.post(f"/report/adapter/{tool.pk}", {"reason": "spam", "comment": "x"}).status_code == 400
    assert Report.objects.filter(status=ReportStatus.OPEN).count() == 2
    # Once a moderator has decided, the same user may report the item again.
    resolve(people["mod"], tool, "dismiss", "works for me")
    assert report(people["bob"]).status_code == 201


def test_reports_above_the_threshold_hide_the_item_until_a_moderator_dismisses_them(people, tool, settings):
    settings.REPORT_HIDE_THRESHOLD = 2
    report(people["bob"])
    assert api().get(FILE).status_code == 200
    report(people["tina"])
    hidden = api().get(FILE)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["message"] == ("alice/tool@1 is no longer available: hidden until a moderator "
                                                 "reviews it: reported by 2 users")
    hide = AuditEntry.objects.get(action="takedown.hide")
    assert hide.actor is None and hide.actor_name == "system" and hide.target_id == tool.pk
    assert Notification.objects.filter(user=people["alice"], subject__contains="hidden").exists()
    client = Client()
    client.force_login(people["mod"])
    assert "hidden" in client.get("/moderation/reports").content.decode()
    # A hold is lifted by deciding on the reports, not by re-publishing past them.
    republish = api(people["mod"]).post(f"/api/v1/moderation/takedowns/{Takedown.objects.get().pk}/republish",
                                        {"reason": "x"}, format="json")
    assert republish.status_code == 409 and error_code(republish) == "resolve_reports"
    assert resolve(people["mod"], tool, "dismiss", "the file loads fine").status_code == 200
    assert api().get(FILE).status_code == 200
    assert set(Report.objects.values_list("status", flat=True)) == {ReportStatus.DISMISSED}
    assert Notification.objects.filter(user=people["bob"], subject__contains="dismissed").exists()
    dismiss = AuditEntry.objects.get(action="report.dismiss")
    assert dismiss.before == {"published": False, "open_reports": 2, "hold": "hidden"}
    assert dismiss.after == {"published": True, "open_reports": 0} and dismiss.reason == "the file loads fine"


def test_unpublishing_stops_serving_files_keeps_the_blobs_and_can_be_reversed(people, tool):
    sha = tool.files.get(path="adapter_model.safetensors").blob.sha256
    report(people["bob"], reason="malware")
    response = resolve(people["mod"], tool, "unpublish", "pickle payload in the weights")
    assert response.status_code == 200 and response.json()[0]["status"] == "upheld"
    for client in (api(), api(people["bob"])):
        gone = client.get(FILE)
        assert gone.status_code == 404 and error_code(gone) == "not_found"
        assert gone.json()["error"]["message"] == ("alice/tool@1 is no longer available: unpublished by a moderator: "
                                                   "pickle payload in the weights")
    assert Client().get("/adapters/alice/tool/v/1/files/adapter_model.safetensors").status_code == 404
    assert api().get("/api/v1/adapters/alice/tool").status_code == 404
    assert get_blob_store().exists(sha)  # kept, so the decision can be reversed
    assert "unpublished by a moderator" in Notification.objects.get(user=people["alice"]).message + \
        Version.objects.get(pk=tool.pk).state_reason
    takedown = Takedown.objects.get()
    assert takedown.kind == TakedownKind.UNPUBLISHED and takedown.created_by == people["mod"]
    client = Client()
    client.force_login(people["mod"])
    assert "alice/tool v1" in client.get("/moderation/takedowns").content.decode()
    client.post(f"/moderation/takedowns/{takedown.pk}/republish", {"reason": "false positive: safetensors only"})
    assert api().get(FILE).status_code == 200
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["takedown.republish", "takedown.unpublish"]


def test_banning_an_uploader_unpublishes_everything_they_published(people, tool, make_version):
    other = make_version(people["alice"], "other-tool")
    make_version(people["bob"], "bobs")
    raw = api_token_create(user=people["alice"], name="cli", scope=TokenScope.WRITE).raw
    report(people["bob"], reason="malware")
    resolve(people["mod"], tool, "ban", "ships malware")
    people["alice"].refresh_from_db()
    assert not people["alice"].is_active
    assert {v.state for v in Version.objects.filter(pk__in=[tool.pk, other.pk])} == {VersionState.UNPUBLISHED}
    assert Version.objects.get(repository__name="bobs").state == VersionState.PUBLISHED
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/adapters").status_code == 401  # the token died with the account
    assert not Client().login(username="alice", password="correct-horse-battery")
    actions = sorted(AuditEntry.objects.values_list("action", "target_label"))
    assert actions == [("takedown.unpublish", "alice/other-tool v1"), ("takedown.unpublish", "alice/tool v1"),
                       ("user.ban", "alice")]


def test_moderators_cannot_be_banned_through_reports(people, make_version):
    mods_own = make_version(people["root"], "admin-tool")
    report_create(reporter=people["bob"], kind="adapter", target_id=mods_own.pk, reason="spam", comment="x")
    response = resolve(people["mod"], mods_own, "ban", "x")
    assert response.status_code == 403 and error_code(response) == "cannot_ban_moderator"
    assert Report.objects.get().status == ReportStatus.OPEN and people["root"].is_active


def test_resolution_needs_a_reason_and_open_reports(people, tool):
    report(people["bob"])
    assert error_code(resolve(people["mod"], tool, "unpublish", " ")) == "reason_required"
    assert error_code(resolve(people["mod"], tool, "shrug", "x")) == "invalid"
    resolve(people["mod"], tool, "dismiss", "fine")
    client = Client()
    client.force_login(people["mod"])
    client.post(f"/moderation/reports/adapter/{tool.pk}/resolve", {"resolution": "unpublish", "reason": "late"})
    assert Version.objects.get(pk=tool.pk).state == VersionState.PUBLISHED  # nothing open: nothing happened


def test_datasets_are_reported_and_taken_down_the_same_way(people, make_version):
    data = make_version(people["alice"], "qa-pairs", kind="dataset",
                        files={"README.md": b"---\nlicense: cc-by-4.0\n---\nQ&A.\n", "train.jsonl": b'{"q": 1}\n'})
    created = report(people["bob"], kind="dataset", name="alice/qa-pairs", reason="license", comment="scraped")
    assert created.status_code == 201 and created.json()["target"]["id"] == data.pk
    assert error_code(report(people["tina"], kind="adapter", name="alice/qa-pairs")) == "not_found"
    resolve(people["mod"], data, "unpublish", "scraped without permission")
    gone = api().get("/api/v1/datasets/alice/qa-pairs/versions/1/files/train.jsonl")
    assert gone.status_code == 404 and "scraped without permission" in gone.json()["error"]["message"]

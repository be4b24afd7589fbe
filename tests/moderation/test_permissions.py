"""Every moderation page and endpoint, tried by people who must not get in: nothing they send has an effect."""

from __future__ import annotations

import pytest
from django.test import Client

from hub.accounts.models import TokenScope
from hub.accounts.services import api_token_create
from hub.audit.models import AuditEntry
from hub.moderation.models import Report, ReportStatus, ReviewItem, ReviewStatus, Takedown
from hub.moderation.services.reports import report_create, reports_resolve
from tests.moderation.conftest import api, error_code

pytestmark = pytest.mark.django_db
OUTSIDERS = ("anonymous", "alice", "bob", "tina")  # alice owns everything here; tina is a trusted uploader


@pytest.fixture
def world(people, validated, make_version):
    """One queued item, one item with an open report, one unpublished item: a target for every action."""
    item = validated(people["alice"], "pending").review
    reported = make_version(people["alice"], "reported")
    report = report_create(reporter=people["bob"], kind="adapter", target_id=reported.pk, reason="spam",
                           comment="an ad")
    taken = make_version(people["alice"], "taken")
    report_create(reporter=people["bob"], kind="adapter", target_id=taken.pk, reason="malware", comment="bad")
    reports_resolve(kind="adapter", target_id=taken.pk, moderator=people["mod"], resolution="unpublish",
                    reason="malware")
    return {"item": item, "report": report, "reported": reported, "takedown": Takedown.objects.get()}


def pages(w) -> list[tuple[str, str, dict]]:
    item, version = w["item"].pk, w["reported"].pk
    return [
        ("get", "/moderation/", {}),
        ("get", f"/moderation/items/{item}", {}),
        ("get", "/moderation/reports", {}),
        ("get", "/moderation/takedowns", {}),
        ("get", "/moderation/users/alice", {}),
        ("get", "/moderation/audit", {}),
        ("post", f"/moderation/items/{item}/claim", {}),
        ("post", f"/moderation/items/{item}/approve", {}),
        ("post", f"/moderation/items/{item}/reject", {"reason_code": "spam"}),
        ("post", f"/moderation/items/{item}/request-changes", {"note": "more"}),
        ("post", "/moderation/items/bulk", {"ids": [item], "decision": "approve"}),
        ("post", f"/moderation/reports/adapter/{version}/resolve", {"resolution": "dismiss", "reason": "x"}),
        ("post", f"/moderation/takedowns/{w['takedown'].pk}/republish", {"reason": "x"}),
        ("post", "/moderation/users/tina/role", {"role": "admin", "reason": "x"}),
    ]


def endpoints(w) -> list[tuple[str, str, dict]]:
    item = w["item"].pk
    return [
        ("get", "/api/v1/moderation/queue", {}),
        ("get", f"/api/v1/moderation/items/{item}", {}),
        ("post", f"/api/v1/moderation/items/{item}/claim", {}),
        ("delete", f"/api/v1/moderation/items/{item}/claim", {}),
        ("post", f"/api/v1/moderation/items/{item}/approve", {}),
        ("post", f"/api/v1/moderation/items/{item}/reject", {"reason_code": "spam"}),
        ("post", f"/api/v1/moderation/items/{item}/request-changes", {"note": "more"}),
        ("post", "/api/v1/moderation/items/bulk", {"ids": [item], "decision": "approve"}),
        ("get", "/api/v1/reports", {}),
        ("post", f"/api/v1/reports/{w['report'].pk}/resolve", {"resolution": "dismiss", "reason": "x"}),
        ("get", "/api/v1/moderation/takedowns", {}),
        ("post", f"/api/v1/moderation/takedowns/{w['takedown'].pk}/republish", {"reason": "x"}),
        ("get", "/api/v1/moderation/audit", {}),
        ("get", "/api/v1/moderation/audit.csv", {}),
    ]


def unchanged(w, audit_count: int) -> None:
    item = ReviewItem.objects.get(pk=w["item"].pk)
    assert item.status == ReviewStatus.OPEN and item.claimed_by is None
    assert Report.objects.get(pk=w["report"].pk).status == ReportStatus.OPEN
    assert Takedown.objects.get(pk=w["takedown"].pk).lifted_at is None
    assert AuditEntry.objects.count() == audit_count


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_are_refused_every_moderation_page(world, people, who):
    audit_count = AuditEntry.objects.count()
    client = Client()
    if who != "anonymous":
        client.force_login(people[who])
    for method, url, data in pages(world):
        response = getattr(client, method)(url, data)
        if who == "anonymous":
            assert response.status_code == 302 and response["Location"].startswith("/login/"), (method, url)
        else:
            assert response.status_code == 403, (who, method, url, response.status_code)
    unchanged(world, audit_count)


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_are_refused_every_moderation_endpoint(world, people, who):
    audit_count = AuditEntry.objects.count()
    client = api(None if who == "anonymous" else people[who])
    for method, url, data in endpoints(world):
        response = getattr(client, method)(url, data, format="json") if method != "get" else client.get(url)
        expected = (401, "not_authenticated") if who == "anonymous" else (403, "permission_denied")
        assert (response.status_code, error_code(response)) == expected, (who, method, url, response.content)
    unchanged(world, audit_count)


def test_moderators_reach_every_page_and_endpoint_that_reads(world, people):
    client = Client()
    client.force_login(people["mod"])
    for method, url, _ in pages(world):
        if method == "get":
            assert client.get(url).status_code == 200, url
    for method, url, _ in endpoints(world):
        if method == "get":
            assert api(people["mod"]).get(url).status_code == 200, url


def test_only_admins_change_roles(world, people):
    moderator = Client()
    moderator.force_login(people["mod"])
    assert moderator.post("/moderation/users/tina/role", {"role": "moderator", "reason": "x"}).status_code == 403
    admin = Client()
    admin.force_login(people["root"])
    admin.post("/moderation/users/tina/role", {"role": "moderator", "reason": "reviews well"})
    people["tina"].refresh_from_db()
    assert people["tina"].role == "moderator"
    # Nobody changes their own role, not even an admin (no locking oneself out, no quiet self-promotion).
    admin.post("/moderation/users/root/role", {"role": "user", "reason": "x"})
    people["root"].refresh_from_db()
    assert people["root"].role == "admin"


def test_a_read_only_token_cannot_moderate(world, people):
    raw = api_token_create(user=people["mod"], name="ro", scope=TokenScope.READ).raw
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/moderation/queue").status_code == 200
    response = client.post(f"/api/v1/moderation/items/{world['item'].pk}/approve", {}, format="json")
    assert response.status_code == 403 and ReviewItem.objects.get(pk=world["item"].pk).status == ReviewStatus.OPEN


def test_reporting_needs_a_signed_in_user(world, people):
    response = api().post("/api/v1/reports", {"kind": "adapter", "name": "alice/reported", "reason": "spam",
                                              "comment": "x"}, format="json")
    assert response.status_code == 401 and error_code(response) == "not_authenticated"
    page = Client().get(f"/report/adapter/{world['reported'].pk}")
    assert page.status_code == 302 and page["Location"].startswith("/login/")

"""Reporting across the visibility boundary: what a report page and the reports API tell about items a caller may
not see, and owners reporting their own items."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from hub.catalog.models import Version, VersionState
from hub.moderation.models import Report
from tests.moderation.conftest import api, error_code

pytestmark = pytest.mark.django_db


def page(user, path: str, data: dict | None = None):
    client = Client()
    client.force_login(user)
    return client.post(path, data) if data is not None else client.get(path)


def reason(response) -> str:
    """What the 404 page says."""
    return re.search(r'<p id="not-found-reason">(.*?)</p>', response.content.decode(), re.S).group(1)


def report(user, name: str, **body):
    return api(user).post("/api/v1/reports", {"kind": "adapter", "name": name, "reason": "broken",
                                              "comment": "does not load", **body}, format="json")


@pytest.fixture
def unseen(people, make_version) -> dict[str, Version]:
    """alice's versions nobody else may see: a pending one and a rejected one, named so a leak is easy to spot."""
    return {"pending": make_version(people["alice"], "secret-pending", state=VersionState.PENDING_REVIEW),
            "rejected": make_version(people["alice"], "secret-rejected", state=VersionState.REJECTED)}


def test_the_report_page_answers_404_for_a_version_the_caller_cannot_see(people, unseen, make_version):
    published = make_version(people["alice"], "tool")
    assert page(people["bob"], f"/report/adapter/{published.pk}").status_code == 200
    missing = page(people["bob"], "/report/adapter/999999")
    assert missing.status_code == 404
    for version in unseen.values():
        hidden = page(people["bob"], f"/report/adapter/{version.pk}")
        assert hidden.status_code == 404
        assert version.repository.name not in hidden.content.decode()
        # The same answer as for a missing id, but for the id itself.
        assert reason(hidden).replace(str(version.pk), "ID") == reason(missing).replace("999999", "ID")
        assert page(people["bob"], f"/report/adapter/{version.pk}",
                    {"reason": "spam", "comment": "x"}).status_code == 404
        # The owner and the moderators see it (it is theirs to see; not published, so not reportable).
        for viewer in (people["alice"], people["mod"]):
            assert version.repository.name in page(viewer, f"/report/adapter/{version.pk}").content.decode()
    assert not Report.objects.exists()


def test_the_reports_api_answers_for_a_hidden_version_exactly_as_for_a_missing_one(people, unseen):
    def answer(response) -> tuple[int, str, str]:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        return response.status_code, body["error"]["code"], body["error"]["message"]

    for state, version in unseen.items():
        name = f"alice/{version.repository.name}"
        hidden = answer(report(people["bob"], name, version=1))
        missing = answer(report(people["bob"], name, version=9))
        assert hidden == (404, "not_found", f"adapter {name} v1 not found")
        assert (missing[0], missing[1], missing[2].replace("v9", "v1")) == hidden, state
        # Without a version (the latest published): the same as a repository that does not exist.
        assert answer(report(people["bob"], name)) == (404, "not_found", f"adapter {name} not found")
        assert answer(report(people["bob"], "alice/nothing")) == (404, "not_found", "adapter alice/nothing not found")
    # A moderator may see a pending version, so for them it is there, just not reportable.
    seen = report(people["mod"], "alice/secret-pending", version=1)
    assert seen.status_code == 409 and error_code(seen) == "not_reportable"
    assert not Report.objects.exists()


def test_an_owner_cannot_report_their_own_item_toward_hiding_it(people, make_version, settings):
    settings.REPORT_HIDE_THRESHOLD = 2
    tool = make_version(people["alice"], "tool")
    assert report(people["bob"], "alice/tool").status_code == 201
    own = report(people["alice"], "alice/tool")
    assert own.status_code == 400 and error_code(own) == "own_item"
    assert "your own" in own.json()["error"]["message"]
    refused = page(people["alice"], f"/report/adapter/{tool.pk}", {"reason": "spam", "comment": "x"})
    assert refused.status_code == 400 and "your own" in refused.content.decode()
    assert list(Report.objects.values_list("reporter__username", flat=True)) == ["bob"]
    assert Version.objects.get(pk=tool.pk).state == VersionState.PUBLISHED  # one reporter: below the threshold
    # The version page offers the Report button to others, not to the owner.
    assert 'class="button secondary report"' in page(people["bob"], "/adapters/alice/tool").content.decode()
    assert 'class="button secondary report"' not in page(people["alice"], "/adapters/alice/tool").content.decode()

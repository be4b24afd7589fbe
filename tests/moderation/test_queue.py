"""The review queue: entering it, claims, decisions (single and bulk), resubmissions, sampling, notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hub.accounts.models import Role
from hub.audit.models import AuditEntry
from hub.catalog.models import VersionState
from hub.moderation.models import Notification, ReviewItem, ReviewStatus, Takedown
from hub.moderation.services.review import review_item_claim
from tests.moderation.conftest import api, error_code

pytestmark = pytest.mark.django_db


def queue_names(client, **params) -> list[str]:
    response = client.get("/api/v1/moderation/queue", params)
    assert response.status_code == 200, response.content
    return [f"{r['repository']}@{r['version']}" for r in response.json()["results"]]


def test_versions_that_pass_validation_wait_in_the_queue_oldest_first(people, validated, tiny_base_model):
    validated(people["alice"], "first", base_model=tiny_base_model)
    validated(people["bob"], "second")
    validated(people["alice"], "third", kind="dataset")
    mod = api(people["mod"])
    assert queue_names(mod) == ["alice/first@1", "bob/second@1", "alice/third@1"]
    assert queue_names(mod, kind="dataset") == ["alice/third@1"]
    assert queue_names(mod, uploader="bob") == ["bob/second@1"]
    assert queue_names(mod, base_model="nomoat/tiny-llama") == ["alice/first@1"]
    assert queue_names(mod, flag="skipped_checks") == queue_names(mod)  # every report here skipped a check
    [first] = api(people["mod"]).get("/api/v1/moderation/queue", {"uploader": "bob"}).json()["results"]
    assert first["state"] == "pending_review" and set(first["flags"]) == {"first_upload", "skipped_checks"}


def test_the_review_page_shows_what_a_moderator_needs(people, validated, make_version):
    make_version(people["alice"], "sql", body="Version one.",
                 files={"README.md": b"---\nlicense: mit\n---\nVersion one.\n",
                        "adapter_config.json": b'{"r": 4, "lora_alpha": 8}', "adapter_model.safetensors": b"w1"})
    item = validated(people["alice"], "sql", files={
        "README.md": b"---\nlicense: apache-2.0\n---\n# SQL\n\nVersion **two**.\n",
        "adapter_config.json": b'{"r": 8, "lora_alpha": 8}', "adapter_model.safetensors": b"w2"}).review
    client = Client()
    client.force_login(people["mod"])
    html = client.get(f"/moderation/items/{item.pk}").content.decode()
    for expected in ("weights_format", "safetensors only", "skipped",  # the validation report
                     "<strong>two</strong>",  # the rendered card
                     "apache-2.0", "adapter_model.safetensors", "Rank",  # license, files, stats
                     "No eval results for this version yet",  # the evals extension point, empty until evals exist
                     "Compared with v1", "license: apache-2.0", '&quot;r&quot;: 4', '&quot;r&quot;: 8',  # diffs
                     "versions published"):  # the uploader's history
        assert expected in html, expected
    bundle = api(people["mod"]).get(f"/api/v1/moderation/items/{item.pk}").json()
    assert bundle["diff"]["previous"] == {"number": 1, "state": "published"}
    assert bundle["diff"]["files_changed"] == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    texts = {text["path"]: text["lines"] for text in bundle["diff"]["texts"]}
    assert "-license: mit" in texts["README.md"] and "+license: apache-2.0" in texts["README.md"]
    assert '-  "r": 4,' in texts["adapter_config.json"] and '+  "r": 8,' in texts["adapter_config.json"]
    assert bundle["eval_results"] == [] and bundle["history"]["versions"]["published"] == 1
    assert bundle["validation_report"]["checks"][0]["name"] == "weights_format"


def test_a_claim_keeps_other_moderators_off_until_it_expires(people, validated, make_user):
    other = make_user("other-mod", role=Role.MODERATOR)
    item = validated(people["alice"], "claimed").review
    claimed = api(people["mod"]).post(f"/api/v1/moderation/items/{item.pk}/claim")
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "mod"
    for url in (f"/api/v1/moderation/items/{item.pk}/claim", f"/api/v1/moderation/items/{item.pk}/approve"):
        refused = api(other).post(url, {}, format="json")
        assert refused.status_code == 409 and error_code(refused) == "claimed", url
    assert "Claimed by" in _page(other, f"/moderation/items/{item.pk}")
    ReviewItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert api(other).post(f"/api/v1/moderation/items/{item.pk}/claim").json()["claimed_by"] == "other-mod"
    assert list(AuditEntry.objects.filter(action="review.claim").values_list("actor_name", flat=True)) == [
        "other-mod", "mod"]
    # Renewing one's own claim extends it without another audit entry; releasing lets anyone in at once.
    review_item_claim(item_id=item.pk, moderator=other)
    assert AuditEntry.objects.filter(action="review.claim").count() == 2
    api(other).delete(f"/api/v1/moderation/items/{item.pk}/claim")
    assert api(people["mod"]).post(f"/api/v1/moderation/items/{item.pk}/approve", {}, format="json").status_code == 200


def _page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_approval_publishes_and_tells_the_uploader(people, validated, mailoutbox, django_capture_on_commit_callbacks):
    people["alice"].email = "alice@example.org"
    people["alice"].save()
    version = validated(people["alice"], "good")
    assert api().get("/api/v1/adapters/alice/good").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = api(people["mod"]).post(f"/api/v1/moderation/items/{version.review.pk}/approve",
                                           {"note": "Nice card."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    version.refresh_from_db()
    assert version.state == VersionState.PUBLISHED and version.published_at is not None
    assert api().get("/api/v1/adapters/alice/good").status_code == 200  # anonymous sees it now
    [mail] = mailoutbox
    assert mail.to == ["alice@example.org"] and "approved" in mail.subject and "Nice card." in mail.body
    assert Notification.objects.get(user=people["alice"]).url == "/adapters/alice/good/v/1"
    assert "Review: Approved" in _page(people["alice"], "/adapters/alice/good/v/1")
    assert "Notifications (1)" in _page(people["alice"], "/notifications/")
    again = api(people["mod"]).post(f"/api/v1/moderation/items/{version.review.pk}/approve", {}, format="json")
    assert again.status_code == 409 and error_code(again) == "already_decided"


def test_rejection_needs_a_listed_reason_and_the_uploader_sees_it(people, validated):
    item = validated(people["alice"], "bad").review
    url = f"/api/v1/moderation/items/{item.pk}/reject"
    mod = api(people["mod"])
    assert error_code(mod.post(url, {}, format="json")) == "reason_required"
    assert error_code(mod.post(url, {"reason_code": "not-a-reason"}, format="json")) == "invalid"
    assert error_code(mod.post(url, {"reason_code": "other"}, format="json")) == "note_required"
    assert mod.post(url, {"reason_code": "license", "note": "GPL weights, MIT card"}, format="json").status_code == 200
    item.version.refresh_from_db()
    assert item.version.state == VersionState.REJECTED
    assert item.version.state_reason == "rejected in review: License missing or incompatible: GPL weights, MIT card"
    page = _page(people["alice"], "/adapters/alice/bad/v/1")
    assert "Review: Rejected" in page and "GPL weights, MIT card" in page
    assert "License missing or incompatible" in Notification.objects.get(user=people["alice"]).message


def test_a_resubmission_takes_the_place_of_the_version_sent_back(people, validated):
    first = validated(people["alice"], "draft").review
    validated(people["bob"], "later")
    mod = api(people["mod"])
    response = mod.post(f"/api/v1/moderation/items/{first.pk}/request-changes", {}, format="json")
    assert response.status_code == 400 and error_code(response) == "note_required"
    mod.post(f"/api/v1/moderation/items/{first.pk}/request-changes", {"note": "Name the training data."},
             format="json")
    assert queue_names(mod) == ["bob/later@1"]
    page = _page(people["alice"], "/adapters/alice/draft/v/1")
    assert "Review: Changes requested" in page and "Name the training data." in page and "/upload/adapter" in page
    second = validated(people["alice"], "draft").review
    assert second.replaces == first and second.queued_at == first.queued_at
    assert queue_names(mod) == ["alice/draft@2", "bob/later@1"]  # back in its old place, ahead of bob
    assert queue_names(mod, flag="resubmission") == ["alice/draft@2"]


def test_bulk_decisions_skip_what_they_may_not_decide(people, validated, make_user):
    items = [validated(people["alice"], f"bulk-{i}").review for i in range(3)]
    review_item_claim(item_id=items[2].pk, moderator=make_user("other-mod", role=Role.MODERATOR))
    mod = api(people["mod"])
    ids = [i.pk for i in items]
    missing_reason = mod.post("/api/v1/moderation/items/bulk", {"ids": ids, "decision": "reject"}, format="json")
    assert missing_reason.status_code == 400 and error_code(missing_reason) == "reason_required"
    response = mod.post("/api/v1/moderation/items/bulk", {"ids": ids, "decision": "approve"}, format="json")
    assert response.json()["decided"] == ids[:2]
    assert response.json()["refused"][str(ids[2])]["code"] == "claimed"
    assert [i.version.state for i in ReviewItem.objects.filter(pk__in=ids).order_by("pk")] == [
        VersionState.PUBLISHED, VersionState.PUBLISHED, VersionState.PENDING_REVIEW]
    client = Client()
    client.force_login(people["mod"])
    more = [validated(people["bob"], f"spam-{i}").review.pk for i in range(2)]
    client.post("/moderation/items/bulk", {"ids": more, "decision": "reject", "reason_code": "spam"})
    assert set(ReviewItem.objects.filter(pk__in=more).values_list("status", flat=True)) == {ReviewStatus.REJECTED}


def test_trusted_uploads_publish_at_once_and_a_share_is_sampled(people, validated, settings):
    settings.TRUSTED_SAMPLE_RATE = 0.0
    unsampled = validated(people["tina"], "unsampled")
    assert unsampled.state == VersionState.PUBLISHED and not ReviewItem.objects.filter(version=unsampled).exists()
    settings.TRUSTED_SAMPLE_RATE = 1.0
    sampled = validated(people["tina"], "sampled")
    assert sampled.state == VersionState.PUBLISHED and sampled.review.sampled
    mod = api(people["mod"])
    assert queue_names(mod) == ["tina/sampled@1"] and queue_names(mod, flag="sampled") == ["tina/sampled@1"]
    refused = mod.post(f"/api/v1/moderation/items/{sampled.review.pk}/request-changes", {"note": "x"}, format="json")
    assert refused.status_code == 400 and error_code(refused) == "not_for_sampled"
    # Rejecting a sampled version takes it down (it was already public), reversibly.
    mod.post(f"/api/v1/moderation/items/{sampled.review.pk}/reject", {"reason_code": "card"}, format="json")
    sampled.refresh_from_db()
    assert sampled.state == VersionState.UNPUBLISHED
    assert Takedown.objects.get(target_id=sampled.pk).reason == "rejected in review: Card incomplete or misleading"
    missing = api().get("/api/v1/adapters/tina/sampled/versions/1")
    assert missing.status_code == 404 and "rejected in review" in missing.json()["error"]["message"]


def test_the_queue_page_lists_filters_and_decides(people, validated):
    item = validated(people["alice"], "page-item").review
    validated(people["bob"], "other")
    client = Client()
    client.force_login(people["mod"])
    html = client.get("/moderation/", {"uploader": "alice"}).content.decode()
    assert "alice/page-item v1" in html and "bob/other" not in html and "1 waiting" in html
    client.post(f"/moderation/items/{item.pk}/claim")
    assert "You hold this item" in client.get(f"/moderation/items/{item.pk}").content.decode()
    response = client.post(f"/moderation/items/{item.pk}/reject", {"reason_code": ""})
    assert response.status_code == 302 and ReviewItem.objects.get(pk=item.pk).status == ReviewStatus.OPEN
    client.post(f"/moderation/items/{item.pk}/approve")
    assert ReviewItem.objects.get(pk=item.pk).status == ReviewStatus.APPROVED

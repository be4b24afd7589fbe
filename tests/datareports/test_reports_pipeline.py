"""A dataset upload gets its data report from the real worker: shown on its page and in the API, with the
locations of secret-looking strings only for the uploader and moderators, and no secret whole for anyone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.catalog.models import Version, VersionState
from hub.catalog.services import version_set_state
from hub.datareports.models import DataReport, JobState
from tests.catalog.test_upload_browser import log_in
from tests.conftest import wait_until
from tests.workers.test_validation_pipeline import settled

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-proj-" + "Zq7Wm2Xc9Vb4Nn1Lk8Jh5Gf3"
QUESTIONS = [f"What does the function number {i} return when it is called without any argument" for i in range(12)]
CARD = b"---\nlicense: cc-by-4.0\n---\n\nQuestions about functions.\n"
SCREENSHOTS = Path(os.environ.get("NOMOAT_DATA_DIR", "var")) / "screenshots"


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def dataset_files() -> list[SimpleUploadedFile]:
    train = [{"prompt": q, "response": f"value {i}"} for i, q in enumerate(QUESTIONS[:10])]
    train += [train[2], {"prompt": f"Deploy with the key {KEY} please", "response": "done"}]
    test = [train[4], {"prompt": QUESTIONS[11], "response": "value 11"}]
    return [SimpleUploadedFile("README.md", CARD), SimpleUploadedFile("train.jsonl", jsonl(train)),
            SimpleUploadedFile("test.jsonl", jsonl(test))]


def client_of(user=None) -> APIClient:
    if user is None:
        return APIClient()
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='t', scope='read').raw}"})


def reported(version: Version) -> DataReport:
    wait_until(lambda: DataReport.objects.filter(versions=version, state__in=[JobState.FINISHED, JobState.FAILED])
               .exists(), timeout=120, what=f"the data report of {version}")
    return DataReport.objects.get(versions=version)


def test_report_of_an_upload_on_its_page_and_in_the_api(celery_worker, make_user, tiny_base_model, live_server,
                                                        browser, page):
    alice, bob, mod = make_user("alice"), make_user("bob"), make_user("mod", role=Role.MODERATOR)
    writer = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    response = writer.post("/api/v1/datasets/alice/functions/versions", {"files": dataset_files()}, format="multipart")
    assert response.status_code == 202, response.content
    version = settled(Version.objects.get(repository__name="functions"))
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    job = reported(version)
    assert job.state == JobState.FINISHED, job.failure_reason
    url = "/api/v1/datasets/alice/functions/versions/1/report"

    # The uploader: every finding, the secret's place and a masked form of it.
    own = client_of(alice).get(url)
    assert own.status_code == 200 and KEY not in own.content.decode()
    report = own.json()["report"]
    assert own.json()["state"] == "finished" and report["rows"] == 14
    assert report["duplicates"]["exact"]["rows"] == 2  # train[2] repeated in train, train[4] copied into test
    assert report["leakage"][0]["split"] == "test" and report["leakage"][0]["rows"] == 1
    assert report["leakage"][0]["examples"][0]["train"]["line"] == 5
    secret = report["sensitive"]["examples"][0]
    assert (secret["file"], secret["line"], secret["kinds"]) == ("train.jsonl", 12, ["api_key"])
    assert secret["masked"] == [f"{KEY[:4]}… ({len(KEY)} characters)"]
    assert report["overlong"]["nomoat/tiny-llama"]["rows"] == 0

    # Not published yet: another user finds nothing; a moderator sees the uploader's view.
    assert client_of(bob).get(url).status_code == 404 and client_of().get(url).status_code == 404
    assert client_of(mod).get(url).json()["report"]["sensitive"]["examples"] == report["sensitive"]["examples"]
    version_set_state(version=version, state=VersionState.PUBLISHED, reason="approved")

    # Anyone else: the counts, never where the secret is.
    for other in (bob, None):
        shown = client_of(other).get(url)
        assert KEY not in shown.content.decode() and KEY[:8] not in shown.content.decode()
        sensitive = shown.json()["report"]["sensitive"]
        assert sensitive == {"rows": 1, "kinds": {"api_key": 1}, "examples": [], "hidden": True}
        assert shown.json()["report"]["duplicates"] == report["duplicates"]
    assert client_of().get("/api/v1/datasets/alice/nothing/versions/1/report").status_code == 404
    assert client_of().get("/api/v1/datasets/alice/functions/versions/2/report").status_code == 404

    # The page: findings with examples side by side; the secrets' list only for the uploader.
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/alice/functions")
    assert "2 exact duplicate rows" in page.locator("#finding-exact").inner_text()
    assert "1 of 2 test rows also appear in train" in page.locator("#finding-leak-test").inner_text()
    assert QUESTIONS[2] in page.locator("#duplicate-examples").inner_text()
    assert "train.jsonl:12" in page.locator("#secret-examples").inner_text()
    # (The row viewer shows the dataset's files as they are, under the files' access rules; the report never.)
    assert page.locator("#data-report svg").count() == 2 and KEY not in page.locator("#data-report").inner_html()
    # Readable on a phone: nothing wider than the screen (tables scroll in their own box).
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("#data-report").screenshot(path=str(SCREENSHOTS / "data-report-390.png"))
    other = browser.new_context()
    try:
        bob_page = other.new_page()
        log_in(bob_page, live_server, "bob")
        bob_page.goto(f"{live_server.url}/datasets/alice/functions")
        assert "1 × API key" in bob_page.locator("#finding-secrets").inner_text()
        assert "uploader and moderators only" in bob_page.locator("#finding-secrets").inner_text()
        assert bob_page.locator("#secret-examples").count() == 0
        assert KEY[:8] not in bob_page.locator("#data-report").inner_html()
    finally:
        other.close()


@pytest.mark.embedded
def test_identical_content_is_reported_once(celery_worker, make_user, tiny_base_model):
    alice = make_user("alice")
    writer = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    for name in ("first", "second"):
        assert writer.post(f"/api/v1/datasets/alice/{name}/versions", {"files": dataset_files()},
                           format="multipart").status_code == 202
    versions = [settled(Version.objects.get(repository__name=name)) for name in ("first", "second")]
    job = reported(versions[0])
    assert reported(versions[1]).pk == job.pk and job.attempts == 1 and DataReport.objects.count() == 1

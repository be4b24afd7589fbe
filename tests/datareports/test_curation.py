"""Curation marks (moderators only, audited, filterable) and collections (owner-only edits), with their boundaries."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.audit.models import AuditEntry
from hub.catalog.models import VersionState

pytestmark = pytest.mark.django_db

DATASET_FILES = {"README.md": b"---\nlicense: cc-by-4.0\n---\n\nRows.\n", "train.jsonl": b'{"text": "hello"}\n'}
CURATION = "/api/v1/datasets/carol/quiz/versions/1/curation"


def client_of(user=None, scope: str = "write") -> APIClient:
    if user is None:
        return APIClient()
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='t', scope=scope).raw}"})


@pytest.fixture
def people(make_user):
    return {name: make_user(name, role=Role.MODERATOR if name == "mod" else Role.USER)
            for name in ("alice", "bob", "carol", "mod")}


def test_moderators_mark_a_dataset_curated_audited_and_filterable(people, make_version, client):
    carol, mod = people["carol"], people["mod"]
    make_version(carol, "quiz", kind="dataset", files=DATASET_FILES)
    make_version(carol, "plain", kind="dataset", files={**DATASET_FILES, "train.jsonl": b'{"text": "other"}\n'})
    make_version(carol, "draft", kind="dataset", files=DATASET_FILES, state=VersionState.PENDING_REVIEW)

    # Who may not: anonymous, a user (even the uploader), a moderator's read-only token.
    assert client_of().post(CURATION, {}, format="json").status_code == 401
    for user in (people["bob"], carol):
        refused = client_of(user).post(CURATION, {}, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client_of(mod, scope="read").post(CURATION, {}, format="json").status_code == 403
    draft = client_of(mod).post("/api/v1/datasets/carol/draft/versions/1/curation", {}, format="json")
    assert draft.status_code == 409 and "only a published version" in draft.json()["error"]["message"]
    assert client_of(mod).post("/api/v1/datasets/carol/nothing/versions/1/curation", {}).status_code == 404
    assert not AuditEntry.objects.filter(action="dataset.curate").exists()

    marked = client_of(mod).post(CURATION, {"note": "clean, balanced"}, format="json")
    assert marked.status_code == 201 and marked.json()["curated_by"] == "mod"
    entry = AuditEntry.objects.get(action="dataset.curate")
    assert (entry.actor_name, entry.target_label, entry.reason) == ("mod", "carol/quiz@1", "clean, balanced")
    report = client_of().get("/api/v1/datasets/carol/quiz/versions/1/report").json()
    assert report["curation"]["curated_by"] == "mod" and report["curation"]["note"] == "clean, balanced"
    listed = client_of().get("/api/v1/datasets?curated=true").json()["results"]
    assert [r["full_name"] for r in listed] == ["carol/quiz"]
    assert len(client_of().get("/api/v1/datasets").json()["results"]) == 2
    assert client_of().get("/api/v1/datasets?curated=maybe").status_code == 400
    bad = client_of(people["alice"]).post("/api/v1/collections", {"name": "x", "title": "t", "items": ["quiz"]},
                                          format="json")
    assert bad.status_code == 400 and "items" in bad.json()["error"]["message"]
    page = client.get("/datasets/?curated=true").content.decode()
    assert "carol/quiz" in page and "carol/plain" not in page
    detail = client.get("/datasets/carol/quiz").content.decode()
    assert 'id="curation"' in detail and "Curated</span> by mod" in detail and 'id="curate"' not in detail

    # The page's button: a moderator takes the mark away; the log keeps both.
    client.force_login(mod)
    assert client.post("/datasets/carol/quiz/v/1/curate", {"action": "uncurate"}).status_code == 302
    assert client_of().get("/api/v1/datasets?curated=true").json()["results"] == []
    assert AuditEntry.objects.filter(action="dataset.uncurate", actor_name="mod").count() == 1
    assert 'id="curate"' in client.get("/datasets/carol/quiz").content.decode()
    client.force_login(people["bob"])
    assert client.post("/datasets/carol/quiz/v/1/curate", {}).status_code == 403


def test_collections_are_ordered_lists_only_their_owner_edits(people, make_version, client):
    alice, bob = people["alice"], people["bob"]
    make_version(people["carol"], "quiz", kind="dataset", files=DATASET_FILES)
    make_version(alice, "sql")
    make_version(alice, "wip", state=VersionState.PENDING_REVIEW)
    make_version(bob, "secret", state=VersionState.PENDING_REVIEW)
    body = {"name": "sql-skills", "title": "SQL skills for SmolLM2", "description": "Start with the data.",
            "items": ["dataset:carol/quiz", "adapter:alice/sql", "adapter:alice/wip"]}
    assert client_of().post("/api/v1/collections", body, format="json").status_code == 401
    made = client_of(alice).post("/api/v1/collections", body, format="json")
    assert made.status_code == 201, made.content
    assert [i["full_name"] for i in made.json()["items"]] == ["carol/quiz", "alice/sql", "alice/wip"]
    again = client_of(alice).post("/api/v1/collections", body, format="json")
    assert again.status_code == 409

    # An item its maker may not see is refused exactly like one that does not exist.
    answers = [client_of(alice).post("/api/v1/collections", {**body, "name": "x", "items": [f"adapter:bob/{n}"]},
                                     format="json") for n in ("secret", "nothing")]
    assert [a.status_code for a in answers] == [404, 404]
    hidden, missing = (a.json()["error"] for a in answers)
    assert hidden["code"] == missing["code"] == "unknown_item" and "items[0]" in hidden["message"]
    assert hidden["message"].replace("secret", "nothing") == missing["message"]

    # Others see what they may see: alice's unpublished adapter is left out for them.
    url = "/api/v1/collections/alice/sql-skills"
    assert [i["full_name"] for i in client_of(bob).get(url).json()["items"]] == ["carol/quiz", "alice/sql"]
    for method in ("patch", "delete"):
        refused = getattr(client_of(bob), method)(url, {"title": "mine now"}, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client_of(alice, scope="read").patch(url, {"title": "x"}, format="json").status_code == 403
    changed = client_of(alice).patch(url, {"items": ["adapter:alice/sql", "dataset:carol/quiz"]}, format="json")
    assert [i["full_name"] for i in changed.json()["items"]] == ["alice/sql", "carol/quiz"]
    assert [c["name"] for c in client_of().get("/api/v1/collections").json()["results"]] == ["sql-skills"]

    page = client.get("/collections/alice/sql-skills").content.decode()
    assert "SQL skills for SmolLM2" in page and page.index("alice/sql") < page.index("carol/quiz")
    assert "sql-skills" in client.get("/collections/").content.decode()
    assert client.get("/collections/alice/nothing").status_code == 404
    assert client_of(alice).delete(url).status_code == 204 and client_of().get(url).status_code == 404

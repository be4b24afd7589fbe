"""The Hub-compatible routes answer for what a caller may not see exactly as for what does not exist."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import Version, VersionState

pytestmark = pytest.mark.django_db

# Each route with {repo} and {rev} to fill in; the model routes, then the dataset ones.
REPO_ROUTES = [
    "/api/models/{repo}", "/api/models/{repo}/revision/{rev}", "/api/models/{repo}/tree/{rev}",
    "/api/models/{repo}/tree/{rev}/notes", "/{repo}/resolve/{rev}/README.md",
]
DATASET_ROUTES = ["/api/datasets/{repo}", "/api/datasets/{repo}/tree/{rev}", "/datasets/{repo}/resolve/{rev}/README.md"]


def answer(response, name: str) -> tuple:
    """Everything a client can read from a refusal, with the repository or revision named replaced by NAME."""
    message = response.headers.get("X-Error-Message", "")
    body = response.content.decode() if response.content else ""
    return (response.status_code, response.headers.get("X-Error-Code"), message.replace(name, "NAME"),
            body.replace(name, "NAME"))


@pytest.fixture
def clients(make_user) -> dict[str, APIClient]:
    token = api_token_create(user=make_user("bob"), name="hf").raw
    return {"anonymous": APIClient(), "bob": APIClient(headers={"Authorization": f"Bearer {token}"})}


def test_unpublished_repositories_answer_as_missing_ones(clients, make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "draft", state=VersionState.PENDING_REVIEW)
    make_version(alice, "refused", state=VersionState.REJECTED)
    make_version(alice, "draft-data", kind="dataset", state=VersionState.PENDING_REVIEW,
                 files={"README.md": b"# data\n", "train.jsonl": b'{"q": 1}\n'})
    for who, client in clients.items():
        for routes, hidden_names in ((REPO_ROUTES, ["draft", "refused"]), (DATASET_ROUTES, ["draft-data"])):
            for route in routes:
                for method in ("get", "head"):
                    missing = answer(getattr(client, method)(route.format(repo="alice/nothing", rev="main")), "nothing")
                    assert missing[:2] == (404, "RepoNotFound"), (who, route)
                    for name in hidden_names:
                        hidden = getattr(client, method)(route.format(repo=f"alice/{name}", rev="main"))
                        assert answer(hidden, name) == missing, (who, route, method, name)


def test_a_hidden_revision_answers_as_a_missing_one_and_missing_files_keep_their_code(clients, make_user,
                                                                                        make_version):
    alice = make_user("alice")
    make_version(alice, "sql-helper")
    pending = make_version(alice, "sql-helper", state=VersionState.PENDING_REVIEW)
    for who, client in clients.items():
        for route in REPO_ROUTES[1:]:
            for hidden_rev in ("v2", "2", pending.commit_sha):
                hidden = client.get(route.format(repo="alice/sql-helper", rev=hidden_rev))
                missing = client.get(route.format(repo="alice/sql-helper", rev="v9"))
                assert answer(missing, "v9")[:2] == (404, "RevisionNotFound"), (who, route)
                assert answer(hidden, hidden_rev) == answer(missing, "v9"), (who, route, hidden_rev)
        entry = client.get("/alice/sql-helper/resolve/main/missing.bin")
        assert entry.status_code == 404 and entry.headers["X-Error-Code"] == "EntryNotFound"
        assert client.get("/alice/sql-helper/resolve/main/README.md").status_code == 200


def test_a_taken_down_repository_answers_404_with_the_moderators_reason(clients, make_user, make_version):
    alice = make_user("alice")
    version = make_version(alice, "tool")
    Version.objects.filter(pk=version.pk).update(state=VersionState.UNPUBLISHED,
                                                 state_reason="unpublished by a moderator: malware")
    for client in clients.values():
        gone = client.get("/api/models/alice/tool")
        assert gone.status_code == 404 and gone.headers["X-Error-Code"] == "RepoNotFound"
        assert "unpublished by a moderator: malware" in gone.json()["error"]

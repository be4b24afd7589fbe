"""huggingface_hub against nomoat: info, tree, downloads, revisions, errors, visibility, listing, datasets."""

from __future__ import annotations

import hashlib

import pytest
import requests

from hub.accounts.services import api_token_create
from hub.catalog.models import Repository, VersionState
from hub.catalog.services import versions_flush_downloads
from tests.conftest import wait_until
from tests.factories import CARD

pytestmark = pytest.mark.django_db(transaction=True)


def adapter_files(seed: str) -> dict[str, bytes]:
    return {
        "README.md": CARD.format(name="sql-helper", body=f"Writes SQL ({seed}).").encode(),
        "adapter_config.json": b'{"peft_type": "LORA", "r": 4}',
        "adapter_model.safetensors": f"weights {seed} ".encode() * 400,
        "notes/eval/results.txt": f"accuracy of {seed}".encode(),
    }


def downloads_of(name: str) -> int:
    versions_flush_downloads()  # the beat's flush folds the buffered downloads into the rows
    return Repository.objects.get(name=name).downloads


def assert_downloads(name: str, count: int) -> None:
    """The server counts a download after sending the response: wait until it has, then check the count."""
    wait_until(lambda: downloads_of(name) >= count, timeout=30, what=f"{count} downloads of {name}")
    assert downloads_of(name) == count


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def test_model_info_tree_and_download(hub_client, alice, make_version):
    files = adapter_files("one")
    version = make_version(alice, "sql-helper", files=files)
    got = hub_client("""
        info = api.model_info("alice/sql-helper")
        result = {
            "id": info.id, "sha": info.sha, "author": info.author, "private": info.private, "gated": info.gated,
            "library": info.library_name, "pipeline": info.pipeline_tag, "tags": info.tags,
            "license": info.card_data.license, "created": info.created_at.isoformat(),
            "siblings": {s.rfilename: [s.size, s.lfs.sha256, s.blob_id] for s in info.siblings},
            "files": api.list_repo_files("alice/sql-helper"),
            "top": [(e.path, type(e).__name__) for e in api.list_repo_tree("alice/sql-helper")],
            "folder": [e.path for e in api.list_repo_tree("alice/sql-helper", path_in_repo="notes", recursive=True)],
            "readme": open(hf_hub_download("alice/sql-helper", "README.md")).read(),
            "weights": open(hf_hub_download("alice/sql-helper", "adapter_model.safetensors"), "rb").read().hex(),
            "exists": [api.file_exists("alice/sql-helper", "adapter_config.json"),
                       api.file_exists("alice/sql-helper", "nope.bin")],
        }
    """)
    assert got["id"] == "alice/sql-helper" and got["sha"] == version.commit_sha and got["author"] == "alice"
    assert got["private"] is False and got["gated"] is False
    assert (got["library"], got["pipeline"], got["license"]) == ("peft", "text-generation", "apache-2.0")
    assert sorted(got["tags"]) == ["demo", "sql"]
    assert got["siblings"]["adapter_model.safetensors"][:2] == [
        len(files["adapter_model.safetensors"]), hashlib.sha256(files["adapter_model.safetensors"]).hexdigest()]
    assert len(got["siblings"]["README.md"][2]) == 40
    assert got["files"] == sorted(files)
    assert got["top"] == [["README.md", "RepoFile"], ["adapter_config.json", "RepoFile"],
                          ["adapter_model.safetensors", "RepoFile"], ["notes", "RepoFolder"]]
    assert got["folder"] == ["notes/eval", "notes/eval/results.txt"]
    assert got["readme"] == files["README.md"].decode()
    assert bytes.fromhex(got["weights"]) == files["adapter_model.safetensors"]
    assert got["exists"] == [True, False]
    assert_downloads("sql-helper", 1)  # HEAD then GET of the weights: one download


def test_resolve_headers_ranges_and_counting(live_server, alice, make_version):
    files = adapter_files("range")
    version = make_version(alice, "sql-helper", files=files)
    body, sha256 = files["adapter_model.safetensors"], hashlib.sha256(files["adapter_model.safetensors"]).hexdigest()
    url = f"{live_server.url}/alice/sql-helper/resolve/main/adapter_model.safetensors"

    head = requests.head(url, timeout=10)
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == version.commit_sha
    assert head.headers["ETag"] == head.headers["X-Linked-Etag"] == f'"{sha256}"'
    assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(body))
    assert head.headers["Accept-Ranges"] == "bytes"

    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}" and part.headers["Content-Length"] == "10"
    assert part.headers["X-Repo-Commit"] == version.commit_sha
    beyond = requests.get(url, headers={"Range": f"bytes={len(body)}-"}, timeout=10)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(body)}"
    assert downloads_of("sql-helper") == 0  # a HEAD and ranges from the middle are not downloads

    whole = requests.get(f"{live_server.url}/alice/sql-helper/resolve/{version.commit_sha}/adapter_model.safetensors",
                         timeout=10)
    assert whole.status_code == 200 and whole.content == body
    assert_downloads("sql-helper", 1)


def test_revisions_and_snapshots(hub_client, alice, make_version):
    v1 = make_version(alice, "sql-helper", files=adapter_files("one"))
    v2 = make_version(alice, "sql-helper", files={**adapter_files("two"), "extra.txt": b"new in v2"})
    got = hub_client("""
        import os

        def readme(revision):
            return open(hf_hub_download("alice/sql-helper", "README.md", revision=revision)).read()

        def tree(folder):
            return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)

        result = {
            "readmes": {r or "default": readme(r) for r in [None, "main", "v1", "1", v1_sha, "v2"]},
            "shas": [api.model_info("alice/sql-helper", revision=r).sha for r in ["main", "v1", v1_sha]],
            "v1_files": sorted(api.list_repo_files("alice/sql-helper", revision="v1")),
            "snapshot_v1": tree(snapshot_download("alice/sql-helper", revision="v1")),
            "snapshot_main": tree(snapshot_download("alice/sql-helper")),
        }
    """, v1_sha=v1.commit_sha)
    readmes = got["readmes"]
    assert readmes["default"] == readmes["main"] == readmes["v2"] and "(two)" in readmes["main"]
    assert readmes["v1"] == readmes["1"] == readmes[v1.commit_sha] and "(one)" in readmes["v1"]
    assert got["shas"] == [v2.commit_sha, v1.commit_sha, v1.commit_sha]
    assert got["v1_files"] == sorted(adapter_files("one"))
    assert got["snapshot_v1"] == sorted(adapter_files("one"))
    assert got["snapshot_main"] == sorted([*adapter_files("two"), "extra.txt"])
    assert_downloads("sql-helper", 2)  # one per snapshot (two versions): only the weights file counts


def test_missing_repo_revision_and_file_raise_the_clients_own_errors(hub_client, alice, make_version):
    make_version(alice, "sql-helper", files=adapter_files("one"))
    got = hub_client("""
        result = {
            "repo": error(lambda: hf_hub_download("alice/nothing", "README.md")),
            "repo_info": error(lambda: api.model_info("nobody/sql-helper")),
            "revision": error(lambda: hf_hub_download("alice/sql-helper", "README.md", revision="v9")),
            "bad_revision": error(lambda: api.model_info("alice/sql-helper", revision="nonsense")),
            "unknown_sha": error(lambda: api.model_info("alice/sql-helper", revision="ab" * 20)),
            "file": error(lambda: hf_hub_download("alice/sql-helper", "missing.bin")),
            "folder": error(lambda: list(api.list_repo_tree("alice/sql-helper", path_in_repo="missing"))),
            "exists": [api.repo_exists("alice/nothing"), api.revision_exists("alice/sql-helper", "v9"),
                       api.revision_exists("alice/sql-helper", "v1"), api.file_exists("alice/sql-helper", "x")],
        }
    """)
    assert got["repo"] == got["repo_info"] == ["RepositoryNotFoundError", 404]
    assert got["revision"] == got["bad_revision"] == got["unknown_sha"] == ["RevisionNotFoundError", 404]
    assert got["file"] == got["folder"] == ["EntryNotFoundError", 404]
    assert got["exists"] == [False, False, True, False]


def test_unpublished_items_are_refused_without_a_token_and_served_to_the_owner(hub_client, alice, make_user,
                                                                               make_version):
    make_version(alice, "draft", files=adapter_files("draft"), state=VersionState.PENDING_REVIEW)
    make_version(alice, "sql-helper", files=adapter_files("one"))
    pending = make_version(alice, "sql-helper", files=adapter_files("two"), state=VersionState.PENDING_REVIEW)
    got = hub_client("""
        def attempts(token):
            return {
                "draft_info": error(lambda: api.model_info("alice/draft", token=token)),
                "draft_file": error(lambda: hf_hub_download("alice/draft", "README.md", token=token)),
                "pending": error(lambda: hf_hub_download("alice/sql-helper", "README.md", revision="v2", token=token)),
            }

        result = {
            "anonymous": attempts(None), "bob": attempts(bob), "alice": attempts(alice),
            "bad_token": error(lambda: api.model_info("alice/sql-helper", token="nmt_not-a-token")),
            "owner_draft": [api.model_info("alice/draft", token=alice).private,
                            open(hf_hub_download("alice/draft", "README.md", token=alice)).read()],
            "owner_main": api.model_info("alice/sql-helper", token=alice).sha,
            "owner_pending": open(hf_hub_download("alice/sql-helper", "README.md", revision=pending_sha,
                                                  token=alice)).read(),
        }
    """, alice=api_token_create(user=alice, name="hf").raw,
        bob=api_token_create(user=make_user("bob"), name="hf").raw, pending_sha=pending.commit_sha)
    # As if they did not exist: the same errors as for a missing repository or revision.
    assert got["anonymous"] == got["bob"] == {"draft_info": ["RepositoryNotFoundError", 404],
                                              "draft_file": ["RepositoryNotFoundError", 404],
                                              "pending": ["RevisionNotFoundError", 404]}
    assert got["alice"] == {"draft_info": None, "draft_file": None, "pending": None}
    assert got["bad_token"] == ["HfHubHTTPError", 401]  # a credentials problem, not a missing repository
    assert got["owner_draft"][0] is True and "(draft)" in got["owner_draft"][1]
    assert got["owner_main"] != pending.commit_sha  # main stays the latest published version, even for its owner
    assert "(two)" in got["owner_pending"]


def test_list_models_search_author_sort_and_pages(hub_client, live_server, alice, make_user, make_version):
    bob = make_user("bob")
    for owner, name, body, downloads in [(alice, "sql-helper", "Writes queries.", 5), (alice, "poetry", "Rhymes.", 50),
                                         (bob, "sql-tuner", "Tunes queries.", 20)]:
        make_version(owner, name, body=body)
        Repository.objects.filter(name=name).update(downloads=downloads)
    make_version(bob, "secret-sql", state=VersionState.REJECTED)
    got = hub_client("""
        def ids(**query):
            return [m.id for m in api.list_models(**query)]

        result = {
            "all": ids(), "alice": ids(author="alice"), "queries": sorted(ids(search="queries")),
            "by_name": ids(search="tuner"),
            "by_downloads": ids(sort="downloads"), "ascending": ids(sort="downloads", direction=1),
            "top": ids(sort="downloads", limit=1), "tagged": [ids(filter=["sql", "demo"], author="bob"), ids(filter="absent")],
            "first": [[m.downloads, m.library_name, m.sha is not None] for m in api.list_models(author="bob")],
        }
    """)
    assert sorted(got["all"]) == ["alice/poetry", "alice/sql-helper", "bob/sql-tuner"]
    assert sorted(got["alice"]) == ["alice/poetry", "alice/sql-helper"]
    assert got["queries"] == ["alice/sql-helper", "bob/sql-tuner"]  # in their cards
    assert got["by_name"] == ["bob/sql-tuner"]
    assert got["by_downloads"] == ["alice/poetry", "bob/sql-tuner", "alice/sql-helper"]
    assert got["ascending"] == got["by_downloads"][::-1]
    assert got["top"] == ["alice/poetry"]
    assert got["tagged"] == [["bob/sql-tuner"], []]
    assert got["first"] == [[20, "peft", True]]

    page = requests.get(f"{live_server.url}/api/models", params={"sort": "downloads", "limit": 2}, timeout=10)
    assert [m["id"] for m in page.json()] == got["by_downloads"][:2]
    rest = requests.get(page.links["next"]["url"], timeout=10)
    assert [m["id"] for m in rest.json()] == got["by_downloads"][2:] and "next" not in rest.links
    bad = requests.get(f"{live_server.url}/api/models", params={"sort": "likes"}, timeout=10)
    assert bad.status_code == 400 and "sort" in bad.headers["X-Error-Message"]


def test_dataset_repos(hub_client, alice, make_version):
    rows = b'{"question": "all users", "sql": "SELECT * FROM users"}\n' * 20
    version = make_version(alice, "sql-pairs", kind="dataset",
                           files={"README.md": b"---\nlicense: cc0-1.0\n---\n# SQL pairs\n", "data/train.jsonl": rows})
    got = hub_client("""
        info = api.dataset_info("alice/sql-pairs")
        result = {
            "info": [info.id, info.sha, info.card_data.license],
            "files": api.list_repo_files("alice/sql-pairs", repo_type="dataset"),
            "rows": open(hf_hub_download("alice/sql-pairs", "data/train.jsonl", repo_type="dataset")).read(),
            "listed": [d.id for d in api.list_datasets(search="sql")],
            "snapshot": snapshot_download("alice/sql-pairs", repo_type="dataset", revision="v1").endswith(sha),
            "as_model": error(lambda: api.model_info("alice/sql-pairs")),
        }
    """, sha=version.commit_sha)
    assert got["info"] == ["alice/sql-pairs", version.commit_sha, "cc0-1.0"]
    assert got["files"] == ["README.md", "data/train.jsonl"]
    assert got["rows"] == rows.decode()
    assert got["listed"] == ["alice/sql-pairs"]
    assert got["snapshot"] is True
    assert got["as_model"] == ["RepositoryNotFoundError", 404]
    assert_downloads("sql-pairs", 1)  # the data file; the snapshot found it in the client's cache

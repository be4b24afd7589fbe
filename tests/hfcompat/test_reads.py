"""huggingface_hub's history and path reads against nomoat: commits, refs, tree with LFS info and last commits,
paths-info, HfFileSystem; and snapshot_download with revisions, patterns, a resumed download and offline use."""

from __future__ import annotations

import hashlib

import pytest

from hub.accounts.services import api_token_create
from hub.catalog.models import Repository, VersionState
from tests.factories import CARD

pytestmark = pytest.mark.django_db(transaction=True)


def adapter_files(seed: str) -> dict[str, bytes]:
    return {
        "README.md": CARD.format(name="sql-helper", body=f"Writes SQL ({seed}).").encode(),
        "adapter_config.json": b'{"peft_type": "LORA", "r": 4}',
        "adapter_model.safetensors": b"weights that stay the same " * 400,
        "notes/eval/results.txt": f"accuracy of {seed}".encode(),
    }


@pytest.fixture
def history(make_user, make_version):
    """alice/sql-helper: v1 and v2 published (v2 changes the card and notes, keeps the weights), v3 pending."""
    alice = make_user("alice")
    v1 = make_version(alice, "sql-helper", files=adapter_files("one"))
    v2 = make_version(alice, "sql-helper", files=adapter_files("two"))
    v3 = make_version(alice, "sql-helper", files=adapter_files("three"), state=VersionState.PENDING_REVIEW)
    return alice, v1, v2, v3


def test_commits_refs_tree_and_paths_info(hub_client, history):
    alice, v1, v2, v3 = history
    got = hub_client("""
        refs = api.list_repo_refs("alice/sql-helper")
        tree = api.list_repo_tree("alice/sql-helper", recursive=True, expand=True)
        result = {
            "commits": [[c.commit_id, c.title, c.authors] for c in api.list_repo_commits("alice/sql-helper")],
            "commits_v1": [c.commit_id for c in api.list_repo_commits("alice/sql-helper", revision="v1")],
            "owner_commits": [c.commit_id for c in api.list_repo_commits("alice/sql-helper", revision="v3",
                                                                          token=token)],
            "hidden": error(lambda: api.list_repo_commits("alice/sql-helper", revision="v3")),
            "branches": [[b.name, b.ref, b.target_commit] for b in refs.branches],
            "tags": [[t.name, t.target_commit] for t in refs.tags],
            "tree": {e.path: [type(e).__name__, e.lfs.sha256 if getattr(e, "lfs", None) else None,
                              e.last_commit.oid if getattr(e, "last_commit", None) else None] for e in tree},
            "paths": [[p.path, type(p).__name__] for p in api.get_paths_info(
                "alice/sql-helper", ["README.md", "notes", "missing.txt", "notes/eval/results.txt"], revision="v1")],
            "paths_missing_repo": error(lambda: api.get_paths_info("alice/nothing", ["README.md"])),
        }
    """, token=api_token_create(user=alice, name="r").raw)
    assert got["commits"] == [[v2.commit_sha, "v2 (published)", ["alice"]], [v1.commit_sha, "v1 (published)", ["alice"]]]
    assert got["commits_v1"] == [v1.commit_sha]
    assert got["owner_commits"] == [v3.commit_sha, v2.commit_sha, v1.commit_sha]
    assert got["hidden"] == ["RevisionNotFoundError", 404]  # a pending version is not anyone else's revision
    assert got["branches"] == [["main", "refs/heads/main", v2.commit_sha]]
    assert got["tags"] == [["v2", v2.commit_sha], ["v1", v1.commit_sha]]
    weights = hashlib.sha256(adapter_files("x")["adapter_model.safetensors"]).hexdigest()
    tree = got["tree"]
    assert tree["adapter_model.safetensors"] == ["RepoFile", weights, v1.commit_sha]  # unchanged since v1
    assert tree["README.md"][2] == v2.commit_sha and tree["adapter_config.json"][2] == v1.commit_sha
    assert tree["notes"][0] == tree["notes/eval"][0] == "RepoFolder"
    assert got["paths"] == [["README.md", "RepoFile"], ["notes", "RepoFolder"], ["notes/eval/results.txt", "RepoFile"]]
    assert got["paths_missing_repo"] == ["RepositoryNotFoundError", 404]


def test_hf_file_system(hub_client, history):
    got = hub_client("""
        from huggingface_hub import HfFileSystem
        fs = HfFileSystem()
        with fs.open("alice/sql-helper/notes/eval/results.txt", "rb") as handle:
            notes = handle.read().decode()
        with fs.open("alice/sql-helper@v1/adapter_model.safetensors", "rb") as handle:
            handle.seek(8)
            middle = handle.read(7).decode()
        result = {
            "ls": sorted(fs.ls("alice/sql-helper", detail=False)),
            "glob": sorted(fs.glob("alice/sql-helper/**/*.txt")),
            "info": [fs.info("alice/sql-helper/README.md")["size"], fs.isdir("alice/sql-helper/notes")],
            "notes": notes, "middle": middle, "v1_readme": fs.read_text("alice/sql-helper@v1/README.md"),
        }
    """)
    assert got["ls"] == ["alice/sql-helper/README.md", "alice/sql-helper/adapter_config.json",
                         "alice/sql-helper/adapter_model.safetensors", "alice/sql-helper/notes"]
    assert got["glob"] == ["alice/sql-helper/notes/eval/results.txt"]
    assert got["info"] == [len(adapter_files("two")["README.md"]), True]
    assert got["notes"] == "accuracy of two" and got["middle"] == "that st"
    assert "(one)" in got["v1_readme"]


def test_snapshot_download_patterns_resume_and_offline(hub_client, history):
    _, v1, v2, _ = history
    weights = adapter_files("x")["adapter_model.safetensors"]
    result = hub_client("""
        import os
        from huggingface_hub import constants

        def tree(folder):
            return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)

        only_json = tree(snapshot_download("alice/sql-helper", revision="v1", allow_patterns=["*.json", "notes/*"]))
        blobs = os.path.join(constants.HF_HUB_CACHE, "models--alice--sql-helper", "blobs")
        with open(os.path.join(blobs, sha256 + ".incomplete"), "wb") as partial:
            partial.write(bytes.fromhex(weights_hex)[:half])
        weights = open(hf_hub_download("alice/sql-helper", "adapter_model.safetensors", revision="v1"), "rb").read()
        whole = snapshot_download("alice/sql-helper", revision="v1")
        offline = snapshot_download("alice/sql-helper", revision=v1_sha, local_files_only=True)
        offline_file = hf_hub_download("alice/sql-helper", "README.md", revision="v1", local_files_only=True)
        try:
            snapshot_download("alice/sql-helper", revision="v2", local_files_only=True)
            v2_offline = "found"
        except Exception as exc:
            v2_offline = type(exc).__name__
        result = {"only_json": only_json, "weights_ok": weights == bytes.fromhex(weights_hex),
                  "whole": tree(whole), "offline": [offline == whole, open(offline_file).read()],
                  "v2_offline": v2_offline}
    """, sha256=hashlib.sha256(weights).hexdigest(), half=len(weights) // 2, weights_hex=weights.hex(),
        v1_sha=v1.commit_sha)
    assert result["only_json"] == ["adapter_config.json", "notes/eval/results.txt"]
    assert result["weights_ok"] is True
    # The download resumed with a Range from the middle, which is not counted as a download.
    assert Repository.objects.get(name="sql-helper").downloads == 0
    assert result["whole"] == sorted(adapter_files("one"))
    assert result["offline"][0] is True and "(one)" in result["offline"][1]
    assert result["v2_offline"] == "LocalEntryNotFoundError"

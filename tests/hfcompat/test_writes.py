"""huggingface_hub writes to nomoat: create_repo, upload_folder/upload_file/create_commit/delete_file and `hf upload`,
through preupload, the Git LFS batch API (basic and multipart transfers) and the NDJSON commit, against a live hub
with a real Celery worker validating every commit as a new version."""

from __future__ import annotations

import hashlib
import json

import pytest

from hub.accounts.models import User
from hub.accounts.services import api_token_create
from hub.catalog.models import Repository, UploadSession, Version, VersionState

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "---\nlicense: apache-2.0\nbase_model: nomoat/tiny-llama\ntags: [sql]\n---\n\n# sql helper\n\nWrites SQL.\n"


@pytest.fixture
def small_chunks(settings) -> int:
    """Parts of 2 KiB, so the tiny adapter's weights (8 KiB and more) take the Hub's multipart transfer in parts."""
    settings.MAX_CHUNK_BYTES = 2048
    return settings.MAX_CHUNK_BYTES


def write_token(user) -> str:
    return api_token_create(user=user, name="hf", scope="write").raw


def files_of(version: Version) -> dict[str, str]:
    return {f.path: f.blob.sha256 for f in version.files.select_related("blob")}


def versions(name: str) -> list[Version]:
    return list(Version.objects.filter(repository__name=name).order_by("number"))


ROWS = b'{"prompt": "all users", "response": "SELECT * FROM users"}\n{"prompt": "one user", "response": "SELECT 1"}\n'


def test_upload_folder_file_commit_and_delete_make_versions(hub_client, celery_worker, make_user, tiny_base_model,
                                                            make_adapter, small_chunks):
    alice = make_user("alice")
    adapter = make_adapter(rank=4, alpha=8)
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    assert len(weights) > 2 * small_chunks  # so it goes in parts
    got = hub_client("""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        url = api.create_repo("alice/sql-helper", token=token)
        again = api.create_repo("alice/sql-helper", token=token, exist_ok=True)
        taken = error(lambda: api.create_repo("alice/sql-helper", token=token))
        folder = api.upload_folder(repo_id="alice/sql-helper", folder_path=adapter, token=token)
        readme = api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="alice/sql-helper",
                                 token=token, commit_message="a card")
        unchanged = api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md",
                                    repo_id="alice/sql-helper", token=token)
        deleted = api.delete_file("README.md", repo_id="alice/sql-helper", token=token)
        missing = error(lambda: api.delete_file("nope.txt", repo_id="alice/sql-helper", token=token))

        dataset = api.create_repo("alice/sql-pairs", repo_type="dataset", token=token)
        rows_v1 = api.create_commit("alice/sql-pairs", repo_type="dataset", token=token, commit_message="rows",
                                    operations=[CommitOperationAdd(path_in_repo="train.jsonl", path_or_fileobj=rows.encode()),
                                                CommitOperationAdd(path_in_repo="draft.jsonl", path_or_fileobj=rows.encode())])
        rows_v2 = api.create_commit("alice/sql-pairs", repo_type="dataset", token=token, commit_message="test split",
                                    operations=[CommitOperationAdd(path_in_repo="test.jsonl", path_or_fileobj=rows.encode()),
                                                CommitOperationDelete(path_in_repo="draft.jsonl")])
        result = {
            "url": [url, url.repo_id, url.repo_type, again.repo_id, str(dataset), dataset.repo_type], "taken": taken,
            "oids": [folder.oid, readme.oid, unchanged.oid, deleted.oid, rows_v1.oid, rows_v2.oid],
            "missing": missing, "owner_sees": api.model_info("alice/sql-helper", token=token).sha,
        }
    """, token=write_token(alice), adapter=str(adapter), card=CARD, rows=ROWS.decode())
    assert got["url"][1:3] == ["alice/sql-helper", "model"] and got["url"][3] == "alice/sql-helper"
    assert got["url"][4].endswith("/datasets/alice/sql-pairs") and got["url"][5] == "dataset"
    assert got["taken"] == ["HfHubHTTPError", 409]
    assert got["missing"] == ["EntryNotFoundError", 404]

    v1, v2, v3 = versions("sql-helper")
    folder_oid, readme_oid, unchanged_oid, deleted_oid, rows_v1, rows_v2 = got["oids"]
    assert [folder_oid, readme_oid, deleted_oid] == [v.commit_sha for v in (v1, v2, v3)]
    assert unchanged_oid == v2.commit_sha  # nothing changed: the client made no commit
    uploaded = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in adapter.iterdir() if p.is_file()}
    card = {"README.md": hashlib.sha256(CARD.encode()).hexdigest()}
    # Each commit is the files before it + additions - deletions; the hub adds its own (GGUF LoRA, signature).
    assert {p: files_of(v1)[p] for p in uploaded} == uploaded and uploaded["README.md"] != card["README.md"]
    assert {p: files_of(v2)[p] for p in uploaded} == uploaded | card
    assert "README.md" not in files_of(v3) and set(uploaded) - {"README.md"} <= set(files_of(v3))
    # Each commit went through validation like any upload, and waits in the review queue (alice is not trusted).
    assert {v.state for v in (v1, v2, v3)} == {VersionState.PENDING_REVIEW}
    assert "adapter_model.gguf" in files_of(v1)  # made by validation, as for an upload through the API
    assert got["owner_sees"] == v3.commit_sha  # nothing published yet: main is the owner's latest
    d1, d2 = versions("sql-pairs")
    assert [rows_v1, rows_v2] == [d1.commit_sha, d2.commit_sha]
    assert {"train.jsonl", "draft.jsonl"} <= set(files_of(d1))
    assert {"train.jsonl", "test.jsonl"} <= set(files_of(d2)) and "draft.jsonl" not in files_of(d2)
    assert d2.state == VersionState.PENDING_REVIEW, d2.state_reason
    # The weights went in parts through one upload session, now completed into the blob store.
    session = UploadSession.objects.get(filename=uploaded["adapter_model.safetensors"])
    assert session.state == UploadSession.State.COMPLETE and session.received == len(weights)


def test_hf_upload_cli(hub_client, celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    adapter = make_adapter(rank=4, alpha=8)
    got = hub_client("""
        import os, subprocess, sys
        hf = os.path.join(os.path.dirname(sys.executable), "hf")
        proc = subprocess.run([hf, "upload", "alice/cli-adapter", adapter], capture_output=True, text=True,
                              env={**os.environ, "HF_TOKEN": token})
        result = [proc.returncode, proc.stdout + proc.stderr]
    """, token=write_token(alice), adapter=str(adapter))
    assert got[0] == 0, got[1]
    [version] = versions("cli-adapter")
    assert "/alice/cli-adapter/tree/main/" in got[1]  # the CLI prints where the files went
    assert set(files_of(version)) >= {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason


def test_a_rejected_push_raises_with_the_validators_reasons(hub_client, celery_worker, make_user, tiny_base_model,
                                                            tmp_path):
    bob = make_user("bob")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04 pickle")
    (tmp_path / "adapter_config.json").write_text("{not json")
    got = hub_client("""
        from huggingface_hub.errors import HfHubHTTPError
        api.create_repo("bob/broken", token=token)
        try:
            api.upload_folder(repo_id="bob/broken", folder_path=folder, token=token)
            pushed = None
        except HfHubHTTPError as exc:
            pushed = [exc.response.status_code, str(exc)]
        try:
            api.upload_file(path_or_fileobj=b"---\\nlicense: [unclosed\\n---\\n", path_in_repo="README.md",
                            repo_id="bob/broken", token=token)
            card = None
        except ValueError as exc:
            card = str(exc)
        api.create_repo("bob/rows", repo_type="dataset", token=token)
        # An empty file is sent inside the commit itself (the Hub's "regular" upload), and then refused.
        empty = error(lambda: api.upload_file(path_or_fileobj=b"", path_in_repo="train.jsonl", repo_id="bob/rows",
                                              repo_type="dataset", token=token))
        result = {"pushed": pushed, "card": card, "empty": empty}
    """, token=write_token(bob), folder=str(tmp_path))
    status, message = got["pushed"]
    [version] = versions("broken")
    assert status == 422 and version.state == VersionState.REJECTED
    assert "bob/broken v1 was rejected" in message and "adapter_model.bin" in message
    assert "adapter_config.json" in message
    assert "Invalid metadata in README.md" in got["card"] and "not valid YAML" in got["card"]
    assert len(versions("broken")) == 1  # the bad card was refused before anything was uploaded
    assert got["empty"] == ["HfHubHTTPError", 422]
    [rows] = versions("rows")
    assert rows.state == VersionState.REJECTED and "train.jsonl: the file holds no rows" in rows.state_reason


def test_writes_need_a_write_token_for_your_own_namespace(hub_client, make_user, make_version):
    alice, bob = make_user("alice"), make_user("bob")
    make_version(bob, "bobs-adapter")
    make_version(alice, "mine")
    got = hub_client("""
        def push(repo_id, token):
            return error(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id,
                                                 token=token))

        result = {
            "anonymous": [error(lambda: api.create_repo("alice/new", token=False)), push("alice/new", False)],
            "read_token": [error(lambda: api.create_repo("alice/new", token=read)), push("bob/bobs-adapter", read)],
            "other_namespace": [error(lambda: api.create_repo("bob/new", token=write)),
                                push("bob/bobs-adapter", write)],
            "missing_repo": push("alice/never-created", write),
            "missing_revision": error(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt",
                                                              repo_id="alice/mine", revision="v7", token=write)),
            "space": error(lambda: api.create_repo("alice/space", repo_type="space", space_sdk="gradio",
                                                   token=write)),
        }
        try:
            api.create_repo("bob/new", token=write)
        except HfHubHTTPError as exc:
            result["message"] = str(exc)
    """, read=api_token_create(user=alice, name="r", scope="read").raw, write=write_token(alice))
    assert got["anonymous"] == [["HfHubHTTPError", 401], ["HfHubHTTPError", 401]]
    assert got["read_token"] == [["HfHubHTTPError", 403], ["HfHubHTTPError", 403]]
    assert got["other_namespace"] == [["HfHubHTTPError", 403], ["HfHubHTTPError", 403]]
    assert got["missing_repo"] == ["RepositoryNotFoundError", 404]
    assert got["missing_revision"] == ["RevisionNotFoundError", 404]
    assert got["space"] == ["BadRequestError", 400]
    assert "you can write only to your own namespace (alice/…), not bob/…" in got["message"]
    assert not Repository.objects.filter(name="new").exists()
    assert Version.objects.filter(repository__name="bobs-adapter").count() == 1


def test_an_interrupted_lfs_upload_resumes_where_it_stopped(hub_client, celery_worker, make_user, tiny_base_model,
                                                            make_adapter, small_chunks):
    alice = make_user("alice")
    adapter = make_adapter(rank=8, alpha=16)
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    oid = hashlib.sha256(weights).hexdigest()
    parts = -(-len(weights) // small_chunks)
    assert parts >= 3
    interrupted = hub_client("""
        import huggingface_hub.lfs as lfs
        sent = []
        real_backoff = lfs.http_backoff

        def dropped_after_two_parts(method, url, **kwargs):
            if url.rsplit("/", 1)[-1].isdigit():  # a part of the weights (the small files go whole)
                if len(sent) == 2:
                    raise ConnectionError("the connection dropped")
                sent.append(url)
            return real_backoff(method, url, **kwargs)

        lfs.http_backoff = dropped_after_two_parts
        api.create_repo("alice/resumed", token=token)
        try:
            api.upload_folder(repo_id="alice/resumed", folder_path=adapter, token=token)
            result = "uploaded"
        except Exception as exc:
            result = repr(exc)
    """, token=write_token(alice), adapter=str(adapter))
    assert "Error while uploading 'adapter_model.safetensors'" in interrupted
    session = UploadSession.objects.get(filename=oid)
    assert session.state == UploadSession.State.OPEN and session.received == 2 * small_chunks
    assert not versions("resumed")

    resumed = hub_client("""
        result = api.upload_folder(repo_id="alice/resumed", folder_path=adapter, token=token).oid
    """, token=write_token(alice), adapter=str(adapter))
    [version] = versions("resumed")
    assert resumed == version.commit_sha and files_of(version)["adapter_model.safetensors"] == oid
    # The same session took the rest: nothing was uploaded twice into a new one.
    assert UploadSession.objects.filter(filename=oid).count() == 1
    session.refresh_from_db()
    assert session.state == UploadSession.State.COMPLETE and session.received == len(weights)
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason


def test_lfs_upload_urls_are_capabilities(live_server, make_user):
    import requests

    alice = make_user("alice")
    token = write_token(alice)
    Repository.objects.create(kind="adapter", owner=alice, name="caps")
    body = b"x" * 100
    batch = requests.post(f"{live_server.url}/alice/caps.git/info/lfs/objects/batch", timeout=10,
                          headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.git-lfs+json"},
                          json={"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
                                "objects": [{"oid": hashlib.sha256(body).hexdigest(), "size": len(body)}]})
    assert batch.status_code == 200, batch.text
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    forged = requests.put(href[:-4] + "AAAA", data=body, timeout=10)
    assert forged.status_code == 403 and "invalid or expired" in forged.headers["X-Error-Message"]
    wrong = requests.put(href, data=b"y" * 100, timeout=10)
    assert wrong.status_code == 400 and "content hashes to" in wrong.headers["X-Error-Message"]
    # The wrong bytes are dropped, not resumed from: the next batch hands out a fresh upload.
    assert requests.put(href, data=body, timeout=10).status_code == 404
    again = requests.post(batch.url, json={"operation": "upload", "objects": [
        {"oid": hashlib.sha256(body).hexdigest(), "size": len(body)}]}, headers={"Authorization": f"Bearer {token}"},
        timeout=10)
    assert requests.put(again.json()["objects"][0]["actions"]["upload"]["href"], data=body, timeout=10).ok
    present = requests.post(batch.url, json={"operation": "upload", "objects": [
        {"oid": hashlib.sha256(body).hexdigest(), "size": len(body)}]}, headers={"Authorization": f"Bearer {token}"},
        timeout=10)
    assert "actions" not in present.json()["objects"][0]  # stored: nothing more to send
    # To someone else the object is not there: it is in no version they can see, so they must send its bytes.
    bob = write_token(make_user("bob"))
    Repository.objects.create(kind="adapter", owner=User.objects.get(username="bob"), name="caps")
    other = requests.post(f"{live_server.url}/bob/caps.git/info/lfs/objects/batch", timeout=10,
                          headers={"Authorization": f"Bearer {bob}"}, json={"operation": "upload", "objects": [
                              {"oid": hashlib.sha256(body).hexdigest(), "size": len(body)}]})
    assert "upload" in other.json()["objects"][0]["actions"]
    commit = requests.post(f"{live_server.url}/api/models/bob/caps/commit/main", timeout=10,
                           headers={"Authorization": f"Bearer {bob}", "Content-Type": "application/x-ndjson"},
                           data=json.dumps({"key": "lfsFile", "value": {"path": "adapter_model.safetensors",
                                                                        "algo": "sha256", "size": len(body),
                                                                        "oid": hashlib.sha256(body).hexdigest()}}))
    assert commit.status_code == 400 and "was not uploaded" in commit.headers["X-Error-Message"]
    bad_oid = requests.post(batch.url, timeout=10, headers={"Authorization": f"Bearer {token}"},
                            json={"operation": "upload", "objects": [{"oid": "../../etc", "size": 1}]})
    assert bad_oid.status_code in {400, 422} and "oid" in bad_oid.headers["X-Error-Message"]


def test_a_commit_waits_for_validation_on_the_asgi_event_loop(celery_worker, make_user):
    """The hub serves ASGI: the commit route is an async view that waits without holding a thread."""
    import asyncio
    import base64
    from concurrent.futures import ThreadPoolExecutor

    from django.test import AsyncClient

    alice = make_user("alice")
    Repository.objects.create(kind="dataset", owner=alice, name="asgi-rows")
    client, token = AsyncClient(), write_token(alice)

    def commit(path: str, data: bytes):
        lines = [{"key": "header", "value": {"summary": "rows"}},
                 {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(),
                                           "encoding": "base64"}}]
        request = client.post("/api/datasets/alice/asgi-rows/commit/main",
                              data="\n".join(json.dumps(line) for line in lines), content_type="application/x-ndjson",
                              headers={"Authorization": f"Bearer {token}"})
        # On a thread of its own: Playwright's sync API (the browser tests) leaves an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, request).result()

    good = commit("train.jsonl", ROWS)
    assert good.status_code == 200, (good.status_code, good.content)
    [version] = versions("asgi-rows")
    assert good.status_code == 200 and good.json()["commitOid"] == version.commit_sha
    assert version.state == VersionState.PENDING_REVIEW
    bad = commit("notes.txt", b"not rows")
    assert bad.status_code == 422 and "notes.txt is not a data file" in bad.headers["X-Error-Message"]

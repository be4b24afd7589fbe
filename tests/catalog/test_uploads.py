"""Upload paths through the API: multipart, archive, resumable chunked sessions; limits and boundaries."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import Blob, UploadSession, Version, VersionState
from hub.catalog.uploads import UploadError, check_upload_path
from tests.workers.test_validation_pipeline import settled

pytestmark = pytest.mark.django_db


def token_client(user, scope: str = "write") -> APIClient:
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='t', scope=scope).raw}"})


def folder_files(folder: Path) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_multipart_upload_is_stored_then_validated_by_a_worker(celery_worker, make_user, tiny_base_model,
                                                               make_adapter):
    alice = make_user("alice")
    adapter = make_adapter(rank=4, alpha=8)
    response = token_client(alice).post("/api/v1/adapters/alice/sql-helper/versions",
                                        {"files": folder_files(adapter), "summary": "text to SQL",
                                         "base_model": "nomoat/tiny-llama"}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "uploaded" and body["status_url"].endswith("/api/v1/adapters/alice/sql-helper/versions/1")
    stored = {f["path"]: f["sha256"] for f in body["files"]}
    expected = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert stored["adapter_model.safetensors"] == expected and Blob.objects.filter(sha256=expected).exists()
    version = settled(Version.objects.get(repository__name="sql-helper"))
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    status = token_client(alice).get(body["status_url"]).json()
    assert status["state"] == "pending_review" and status["validation_report"]["ok"]


@pytest.mark.django_db(transaction=True)
def test_archive_upload_through_the_api(celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in make_adapter(rank=4, alpha=8).iterdir():
            archive.add(path, arcname=f"adapter/{path.name}")
    upload = SimpleUploadedFile("adapter.tar.gz", buffer.getvalue())
    response = token_client(alice).post("/api/v1/adapters/alice/packed/versions", {"archive": upload},
                                        format="multipart")
    assert response.status_code == 202, response.content
    version = settled(Version.objects.get(repository__name="packed"))
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    assert "adapter_model.safetensors" in version.files.values_list("path", flat=True)


@pytest.mark.django_db(transaction=True)
def test_chunked_upload_resumes_after_a_dropped_connection(celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    client = token_client(alice)
    adapter = make_adapter(rank=8, alpha=16)
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    session = client.post("/api/v1/uploads", {"filename": "adapter_model.safetensors", "size": len(weights)},
                          format="json").json()
    url = session["url"]
    chunk = 4096
    first = client.put(url, weights[:chunk], content_type="application/octet-stream",
                       HTTP_CONTENT_RANGE=f"bytes 0-{chunk - 1}/{len(weights)}")
    assert first.json()["offset"] == chunk
    # the connection drops: the client asks where to resume instead of starting over
    assert client.get(url).json()["offset"] == chunk
    wrong = client.put(url, weights[:chunk], content_type="application/octet-stream",
                       HTTP_CONTENT_RANGE=f"bytes 0-{chunk - 1}/{len(weights)}")
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "offset_mismatch"
    offset = chunk
    while offset < len(weights):
        end = min(offset + chunk, len(weights))
        client.put(f"{url}?offset={offset}", weights[offset:end], content_type="application/octet-stream")
        offset = end
    bad = client.post(f"{url}/complete", {"sha256": "0" * 64}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "sha256_mismatch"
    done = client.post(f"{url}/complete", {"sha256": hashlib.sha256(weights).hexdigest()}, format="json").json()
    assert done["state"] == "complete" and done["sha256"] == hashlib.sha256(weights).hexdigest()
    config = SimpleUploadedFile("adapter_config.json", (adapter / "adapter_config.json").read_bytes())
    card = SimpleUploadedFile("README.md", (adapter / "README.md").read_bytes())
    # the small files go as multipart; the big one by reference to its completed session
    version = client.post("/api/v1/adapters/alice/chunked/versions", {"files": [config, card]}, format="multipart")
    assert version.status_code == 202
    # a version built only from sessions goes as JSON
    json_version = client.post("/api/v1/adapters/alice/chunked/versions",
                               {"uploads": {"adapter_model.safetensors": session["id"]}}, format="json")
    assert json_version.status_code == 202, json_version.content
    [listed] = json_version.json()["files"]
    assert {key: listed[key] for key in ("path", "size", "sha256", "url")} == {
        "path": "adapter_model.safetensors", "size": len(weights), "sha256": hashlib.sha256(weights).hexdigest(),
        "url": "/api/v1/adapters/alice/chunked/versions/2/files/adapter_model.safetensors"}


def test_upload_boundaries(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    files = {"files": [SimpleUploadedFile("README.md", b"# hi")]}
    anonymous = APIClient().post("/api/v1/adapters/alice/x/versions", files, format="multipart")
    assert anonymous.status_code == 401
    reader = token_client(alice, scope="read").post("/api/v1/adapters/alice/x/versions", files, format="multipart")
    assert reader.status_code == 403
    other = token_client(bob).post("/api/v1/adapters/alice/x/versions", files, format="multipart")
    assert other.status_code == 403 and "own namespace" in other.json()["error"]["message"]
    session = token_client(alice).post("/api/v1/uploads", {"filename": "w.safetensors", "size": 10},
                                       format="json").json()
    assert token_client(bob).get(session["url"]).status_code == 404
    stolen = token_client(bob).post("/api/v1/adapters/bob/x/versions", {"uploads": {"w.safetensors": session["id"]}},
                                    format="json")
    assert stolen.status_code == 400 and stolen.json()["error"]["code"] == "unknown_upload"
    incomplete = token_client(alice).post("/api/v1/adapters/alice/x/versions",
                                          {"uploads": {"w.safetensors": session["id"]}}, format="json")
    assert incomplete.json()["error"]["code"] == "upload_incomplete"
    assert not Version.objects.exists()


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs.json", ".hidden", "a/../../b", "", "con\x00.json"])
def test_unsafe_paths_are_refused(name):
    with pytest.raises(UploadError) as refused:
        check_upload_path(name)
    assert refused.value.code == "bad_filename"


def test_upload_file_names_never_escape(make_user):
    alice = make_user("alice")
    traversal = SimpleUploadedFile("x", b"data")
    traversal.name = "../../etc/adapter_config.json"  # Django's parser keeps only the base name
    response = token_client(alice).post("/api/v1/adapters/alice/x/versions", {"files": [traversal]}, format="multipart")
    assert response.status_code == 202 and [f["path"] for f in response.json()["files"]] == ["adapter_config.json"]
    hidden = SimpleUploadedFile(".env", b"SECRET=1")
    refused = token_client(alice).post("/api/v1/adapters/alice/y/versions", {"files": [hidden]}, format="multipart")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_filename"
    assert Version.objects.count() == 1


def test_limits_name_the_file_and_the_limit(make_user, settings):
    settings.MAX_UPLOAD_BYTES = 100
    alice = make_user("alice")
    big = SimpleUploadedFile("adapter_model.safetensors", b"x" * 101)
    response = token_client(alice).post("/api/v1/adapters/alice/big/versions", {"files": [big]}, format="multipart")
    assert response.status_code == 413
    assert "adapter_model.safetensors" in response.json()["error"]["message"] and "100" in response.json()["error"]["message"]
    session = token_client(alice).post("/api/v1/uploads", {"filename": "w.bin", "size": 101}, format="json")
    assert session.status_code == 413
    assert not Version.objects.exists() and not UploadSession.objects.exists()


def test_bad_repository_name_and_unknown_base_model(make_user):
    alice = make_user("alice")
    files = {"files": [SimpleUploadedFile("README.md", b"# hi")]}
    bad = token_client(alice).post("/api/v1/adapters/alice/-bad-/versions", files, format="multipart")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_name"
    unknown = token_client(alice).post("/api/v1/adapters/alice/ok/versions",
                                       {**files, "base_model": "nobody/nothing"}, format="multipart")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_base_model"

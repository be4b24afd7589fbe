"""Signing on the hub: every validated version and built stack carries model.sig and its attestations as files
(listed by the API and the Hugging Face routes), the keys are served, rotated and revoked, and each served blob has
a hybrid torrent and a Metalink whose sources are exactly the public URLs that serve it."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest
from rest_framework.test import APIClient

from hub.catalog.models import Version, VersionState
from hub.provenance.keys import key_revoke, key_rotate, public_keys
from hub.provenance.signing import version_sign
from tests.catalog.test_uploads import folder_files, token_client
from tests.workers.test_validation_pipeline import settled
from workers.engine.signing import ATTESTATIONS_FILE, SIGNATURE_FILE, VALIDATION, PublicKey, signed_files

pytestmark = pytest.mark.django_db
WEIGHTS = "adapter_model.safetensors"
NS = {"m": "urn:ietf:params:xml:ns:metalink"}


@pytest.fixture
def signed_adapter(make_user, publish_adapter, own_keys):
    alice = make_user("alice")
    version, folder = publish_adapter(alice, "sql", rank=4, alpha=8)
    version_sign(version=version)
    return Version.objects.get(pk=version.pk), folder


def test_a_signed_version_lists_model_sig_and_its_attestation_everywhere(signed_adapter, client):
    version, folder = signed_adapter
    files = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    assert {SIGNATURE_FILE, ATTESTATIONS_FILE} <= set(files)
    api = client.get("/api/v1/adapters/alice/sql/versions/1/files").json()
    entries = {f["path"]: f for f in api}
    assert set(entries) == set(files)
    weights = entries[WEIGHTS]
    assert weights["torrent"] == f"/api/v1/blobs/{weights['sha256']}/torrent"
    assert weights["metalink"] == f"/api/v1/blobs/{weights['sha256']}/meta4"
    assert weights["magnet"].startswith("magnet:?xt=urn:btih:") and "xt=urn:btmh:1220" in weights["magnet"]
    assert "ws=http%3a%2f%2ftestserver%2fapi%2fv1%2fadapters%2falice%2fsql%2fversions%2f1%2ffiles" in weights["magnet"]
    tree = client.get(f"/api/models/alice/sql/tree/{version.commit_sha}").json()
    assert SIGNATURE_FILE in {entry["path"] for entry in tree}  # the HF routes list it: a new commit id
    bundle = client.get(f"/alice/sql/resolve/main/{SIGNATURE_FILE}")
    assert bundle.status_code == 200
    signed = json.loads(b"".join(bundle.streaming_content))
    assert signed["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_the_validation_attestation_names_inputs_and_outputs_by_sha256(signed_adapter, tmp_path):
    version, folder = signed_adapter
    from hub.catalog.blobstore import get_blob_store

    store = get_blob_store()
    files = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    signature = tmp_path / SIGNATURE_FILE
    signature.write_bytes(store.local_path(files[SIGNATURE_FILE]).read_bytes())
    listed = signed_files(signature)
    assert listed == {p: s for p, s in files.items() if p != SIGNATURE_FILE}
    envelope = json.loads(store.local_path(files[ATTESTATIONS_FILE]).read_text())
    import base64

    item = json.loads(base64.b64decode(envelope["payload"]))
    assert item["predicateType"] == VALIDATION
    assert {s["name"]: s["digest"]["sha256"] for s in item["subject"]} == {
        p: s for p, s in files.items() if p not in (SIGNATURE_FILE, ATTESTATIONS_FILE)}
    inputs = {i["name"]: i["digest"]["sha256"] for i in item["predicate"]["inputs"]}
    assert inputs[WEIGHTS] == hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    assert item["predicate"]["uploaded_by"] == "alice" and item["predicate"]["repository"] == "alice/sql"


def test_keys_are_served_rotated_and_revoked(own_keys, client):
    first = client.get("/api/v1/keys").json()["keys"]
    assert [k["status"] for k in first] == ["current"] and first[0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert client.get("/api/v1/keys/current.pem").content.decode() == first[0]["pem"]
    new_id = key_rotate()
    keys = {k["key_id"]: k["status"] for k in client.get("/api/v1/keys").json()["keys"]}
    assert keys == {new_id: "current", first[0]["key_id"]: "previous"}
    key_revoke(first[0]["key_id"])
    keys = {k["key_id"]: k["status"] for k in client.get("/api/v1/keys").json()["keys"]}
    assert keys == {new_id: "current", first[0]["key_id"]: "revoked"}
    from hub.core.errors import ServiceError

    with pytest.raises(ServiceError, match="is the current signing key: rotate it first"):
        key_revoke(new_id)
    assert [k.status for k in public_keys()] == ["current", "revoked"]


def test_a_torrent_is_a_hybrid_with_every_public_url_as_a_web_seed(signed_adapter, client, make_user, make_version,
                                                                    settings):
    import libtorrent as lt

    version, folder = signed_adapter
    sha = version.files.get(path=WEIGHTS).blob.sha256
    settings.BLOB_MIRROR_URLS = ["http://127.0.0.2:9000/blobs/{sha256}"]
    response = client.get(f"/api/v1/blobs/{sha}/torrent")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-bittorrent"
    data = lt.bdecode(response.content)
    info = lt.torrent_info(data)
    assert info.info_hashes().has_v1() and info.info_hashes().has_v2()
    assert [u.decode() for u in data[b"url-list"]] == [
        f"http://testserver/api/v1/adapters/alice/sql/versions/1/files/{WEIGHTS}", f"http://127.0.0.2:9000/blobs/{sha}"]
    assert info.total_size() == (folder / WEIGHTS).stat().st_size

    meta = ET.fromstring(client.get(f"/api/v1/blobs/{sha}/meta4").content)  # noqa: S314 - our own hub's XML
    file = meta.find("m:file", NS)
    assert file.get("name") == WEIGHTS and file.find("m:hash", NS).text == sha
    assert [u.text for u in file.findall("m:url", NS)] == [u.decode() for u in data[b"url-list"]]
    pieces = file.find("m:pieces", NS)
    length = int(pieces.get("length"))
    content = (folder / WEIGHTS).read_bytes()
    assert [h.text for h in pieces.findall("m:hash", NS)] == [
        hashlib.sha256(content[i:i + length]).hexdigest() for i in range(0, len(content), length)]


def test_a_hidden_file_has_no_torrent_exactly_like_a_missing_one(signed_adapter, client):
    version, _ = signed_adapter
    sha = version.files.get(path=WEIGHTS).blob.sha256
    Version.objects.filter(pk=version.pk).update(state=VersionState.UNPUBLISHED)
    hidden = client.get(f"/api/v1/blobs/{sha}/torrent")
    missing = client.get(f"/api/v1/blobs/{'0' * 64}/torrent")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(sha, "X") == missing.json()["error"]["message"].replace("0" * 64,
                                                                                                             "X")
    assert client.get(f"/api/v1/blobs/{sha}/meta4").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_the_worker_signs_a_version_when_it_passes_validation(celery_worker, make_user, tiny_base_model, make_adapter):
    from hub.provenance.keys import signing_key
    from workers.engine.signing import public_key_pem

    alice = make_user("alice")
    response = token_client(alice).post("/api/v1/adapters/alice/signed/versions",
                                        {"files": folder_files(make_adapter(rank=4, alpha=8)),
                                         "base_model": "nomoat/tiny-llama"}, format="multipart")
    assert response.status_code == 202, response.content
    version = settled(Version.objects.get(repository__name="signed"))
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    paths = set(version.files.values_list("path", flat=True))
    assert {SIGNATURE_FILE, ATTESTATIONS_FILE, WEIGHTS, "adapter_model.gguf"} <= paths
    listed = {f["path"] for f in token_client(alice).get("/api/v1/adapters/alice/signed/versions/1").json()["files"]}
    assert listed == paths
    # Signed with the key the hub serves (the worker and the web share it).
    from hub.catalog.blobstore import get_blob_store

    bundle = json.loads(get_blob_store().local_path(version.files.get(path=SIGNATURE_FILE).blob.sha256).read_text())
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == PublicKey(public_key_pem(signing_key())).key_id
    assert APIClient().get("/api/v1/keys").json()["keys"][0]["key_id"] == bundle["verificationMaterial"]["publicKey"][
        "hint"]


def test_an_attestation_added_after_signing_is_a_new_commit_and_leaves_model_sig_alone(signed_adapter, client,
                                                                                        own_keys, tmp_path):
    """An evaluation lands after the signature: its bundle is outside model.sig's list (the real model_signing
    accepts the folder with it), and the version's commit id follows its file list, so the HF routes name the new
    file under a new commit."""
    from hub.catalog.workdir import materialize
    from hub.provenance.signing import version_attest
    from tests.provenance.test_signing_engine import model_signing_verify
    from workers.engine.signing import EVALUATION, attestation_path

    version, _ = signed_adapter
    before = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    blob = version_attest(version=version, name="eval-test", predicate_type=EVALUATION, predicate={"metrics": {}})
    after = Version.objects.get(pk=version.pk)
    files = {f.path: f.blob.sha256 for f in after.files.select_related("blob")}
    path = attestation_path("eval-test")
    assert files == {**before, path: blob.sha256}  # model.sig and everything else unchanged
    assert after.commit_sha != version.commit_sha
    assert after.commit_sha == Version.make_commit_sha(after.repository_id, after.number, list(files.items()))
    tree = client.get(f"/api/models/alice/sql/tree/{after.commit_sha}?recursive=true").json()
    assert path in {entry["path"] for entry in tree}
    assert version_attest(version=after, name="eval-test", predicate_type=EVALUATION, predicate={"metrics": {}}) == blob
    assert Version.objects.get(pk=version.pk).commit_sha == after.commit_sha  # the same statement: nothing new
    linked = tmp_path / "linked"
    materialize(files.items(), linked)
    folder = tmp_path / "alice-sql-v1"
    import shutil

    shutil.copytree(linked, folder)
    checked = model_signing_verify(folder, own_keys / "current.pem", tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_a_version_signed_before_model_sig_left_attestations_out_is_signed_again_when_attested(signed_adapter,
                                                                                              own_keys, tmp_path):
    """Bundles made before the attestations folder existed list only model.sig as ignored: model_signing would see
    a later attestation as an extra file, so the version is signed again (same files) before one is added."""
    import shutil

    import model_signing

    from hub.catalog.blobstore import get_blob_store
    from hub.catalog.models import VersionFile
    from hub.catalog.services import blob_put_file
    from hub.catalog.workdir import materialize
    from hub.provenance.signing import version_attest
    from tests.provenance.test_signing_engine import model_signing_verify
    from workers.engine.signing import EVALUATION, leaves_out_attestations

    version, _ = signed_adapter
    files = {f.path: f.blob.sha256 for f in version.files.select_related("blob") if f.path != SIGNATURE_FILE}
    old = tmp_path / "old"
    materialize(files.items(), old)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=own_keys / "current.pem").set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE])).sign(old, old / SIGNATURE_FILE)
    assert not leaves_out_attestations(old / SIGNATURE_FILE)
    stale = blob_put_file(path=old / SIGNATURE_FILE)
    VersionFile.objects.filter(version=version, path=SIGNATURE_FILE).update(blob=stale)

    version_attest(version=version, name="eval-old", predicate_type=EVALUATION, predicate={"metrics": {}})
    after = {f.path: f.blob.sha256 for f in Version.objects.get(pk=version.pk).files.select_related("blob")}
    assert after[SIGNATURE_FILE] != stale.sha256
    assert leaves_out_attestations(get_blob_store().local_path(after[SIGNATURE_FILE]))
    linked = tmp_path / "linked"
    materialize(after.items(), linked)
    shutil.copytree(linked, tmp_path / "alice-sql-v1")
    checked = model_signing_verify(tmp_path / "alice-sql-v1", own_keys / "current.pem", tmp_path)
    assert checked.returncode == 0, checked.stderr

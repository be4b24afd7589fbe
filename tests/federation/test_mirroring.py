"""Mirroring on one hub: activities built with hub.federation.objects from a real version, its files served by a
loopback HTTP server standing for the origin hub (127.0.0.2), fed to mirroring.activity_received as F1's inbox does.

Celery runs eagerly here (the task code path, in this process) and on-commit callbacks are executed, so one call
goes receive -> fetch -> record -> validate -> publish -> announce, as a worker would.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from rest_framework.test import APIClient

from hub.accounts.models import User
from hub.accounts.services import api_token_create, user_sign_up
from hub.audit.models import AuditEntry
from hub.catalog.blobstore import get_blob_store
from hub.catalog.models import Blob, FetchState, Repository, Version, VersionOrigin, VersionState
from hub.catalog.services import BlobRefused, blob_put_stream
from hub.catalog.tasks import validate_version
from hub.celery import app as celery_app
from hub.federation import mirroring
from hub.federation.actors import public_url
from hub.federation.mirroring import MirrorRefused, activity_received
from hub.federation.models import InboxActivity, OutboxActivity, Peer, RemoteItem, RemoteItemState
from hub.federation.objects import create_activity, delete_activity, flag_activity
from hub.federation.tasks import catch_up_all
from hub.moderation.models import BlockedDigest, Report
from hub.provenance.keys import public_keys
from hub.provenance.models import OriginSignature
from tests.provenance.test_signing_engine import MODEL_SIGNING
from workers.engine.signing import (
    MIRROR,
    PublicKey,
    attestation_statements,
    ensure_private_key,
    is_mirror_attestation,
    public_key_pem,
    verify_folder,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Origin:
    """The origin hub's file server: serves `files[path]` at the path of each file URL, and counts requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                origin.requests.append(self.path)
                body = origin.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.base_url = f"http://127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def origin_server() -> Iterator[Origin]:
    origin = Origin()
    yield origin
    origin.server.shutdown()


@pytest.fixture
def eager_tasks(settings) -> Iterator[None]:
    """Tasks run in this process when enqueued (on commit, as on a worker); deliveries, sent by name, are dropped."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_eager_propagates = False
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("federation")


@pytest.fixture
def peer(origin_server) -> Peer:
    return Peer.objects.create(base_url=origin_server.base_url, actor_url=f"{origin_server.base_url}/federation/actor",
                               inbox_url=f"{origin_server.base_url}/federation/actor/inbox")


def _rebase(url: str, base: str) -> str:
    parts = urlsplit(url)
    return f"{base}{parts.path}"


class _Discard(Exception):
    pass


@pytest.fixture
def remote_activity(make_user, make_version, tiny_base_model, make_adapter, origin_server):
    """`remote_activity(name)`: the Create the origin would send for a real adapter version `alice/<name>`, built
    in a transaction that is then rolled back, so this hub holds nothing of it and must fetch every file."""

    def build(name: str = "sql-helper", *, validated: bool = False, **adapter_kwargs: object) -> dict:
        folder = make_adapter(rank=4, alpha=8, **adapter_kwargs)
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        files["README.md"] = (f"---\nlicense: apache-2.0\nbase_model: nomoat/tiny-llama\ntags: [sql]\n---\n\n"
                              f"# {name}\n\nText to SQL.\n").encode()
        built: dict = {}
        with contextlib.suppress(_Discard), transaction.atomic():
            version = make_version(make_user("alice"), name, files=files, base_model=tiny_base_model,
                                   state=VersionState.UPLOADED if validated else VersionState.PUBLISHED)
            if validated:  # as on a real origin: the hub's GGUF, signature and attestations are among its files
                validate_version(version.pk)
            built = create_activity(version)
            raise _Discard
        obj = built["object"]
        obj["id"] = obj["url"] = _rebase(obj["id"], origin_server.base_url)
        obj["repository"]["url"] = _rebase(obj["repository"]["url"], origin_server.base_url)
        for entry in obj["files"]:
            entry["url"] = _rebase(entry["url"], origin_server.base_url)
            path = get_blob_store().local_path(entry["sha256"])
            origin_server.files[urlsplit(entry["url"]).path] = path.read_bytes()
            path.unlink()
        origin_server.files[KEYS] = served_keys(public_keys())  # the origin signed with this hub's key here
        return built

    return build


KEYS = "/api/v1/keys"


def served_keys(keys: list[PublicKey]) -> bytes:
    """/api/v1/keys as a hub serves it."""
    return json.dumps({"keys": [{"key_id": k.key_id, "status": k.status, "algorithm": "ecdsa-p256-sha256",
                                 "pem": k.pem.decode()} for k in keys]}).encode()


def mirrored(activity: dict) -> Version | None:
    """The version an activity's object became here with its files (a listed one, files elsewhere, is not)."""
    origin = VersionOrigin.objects.select_related("version__repository__owner").filter(
        object_id=activity["object"]["id"]).exclude(version__state=VersionState.LISTED).first()
    return Version.objects.get(pk=origin.version_id) if origin else None


def test_a_received_version_is_fetched_validated_and_served_with_its_origin(peer, remote_activity, eager_tasks,
                                                                           origin_server):
    activity = remote_activity(validated=True)
    sent = {f["path"]: f["sha256"] for f in activity["object"]["files"]}
    assert {"adapter_model.gguf", "model.sig"} <= set(sent)
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    assert version is not None and version.state == VersionState.PUBLISHED, version and version.state_reason
    held = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    # The origin's signed files are kept byte for byte (this hub validated the upload again and made the same GGUF);
    # its own word on it is an attestation of its own beside them.
    assert {p: s for p, s in held.items() if not p.startswith("attestations/")} == sent
    assert {p for p in held if p.startswith("attestations/eval-")}  # its evaluations here beside it, eagerly run
    [mine] = [p for p in held if is_mirror_attestation(p)]
    [item] = attestation_statements(get_blob_store().local_path(held[mine]).read_bytes())
    assert item["predicateType"] == MIRROR
    assert item["predicate"]["origin"]["hub"] == origin_server.base_url
    assert item["predicate"]["origin"]["object"] == activity["object"]["id"]
    assert item["predicate"]["received_from"] == peer.base_url
    assert item["predicate"]["rebuilt"] == {"adapter_model.gguf": {"sha256": sent["adapter_model.gguf"],
                                                                   "same_as_origin": True}}
    assert item["predicate"]["signature"]["digest"]["sha256"] == sent["model.sig"]
    assert version.commit_sha == Version.make_commit_sha(version.repository_id, version.number, list(held.items()))
    assert OriginSignature.objects.get(version=version).hub == origin_server.base_url
    namespace = f"alice__127.0.0.2-{origin_server.server.server_address[1]}"
    assert version.repository.owner.username == namespace
    assert not version.repository.owner.has_usable_password()
    assert version.origin.fetch_state == FetchState.MIRRORED and version.validation_report["ok"]

    detail = APIClient().get(f"/api/v1/adapters/{namespace}/sql-helper/versions/1").json()
    assert detail["origin"] == {"hub": origin_server.base_url, "url": activity["object"]["id"], "owner": "alice",
                                "name": "sql-helper", "version": 1}
    weights = APIClient().get(f"/api/v1/adapters/{namespace}/sql-helper/versions/1/files/adapter_model.safetensors")
    assert weights.status_code == 200
    assert b"".join(weights.streaming_content) == origin_server.files[
        "/api/v1/adapters/alice/sql-helper/versions/1/files/adapter_model.safetensors"]
    listed = APIClient().get("/api/v1/adapters", {"hub": origin_server.base_url}).json()["results"]
    assert [r["full_name"] for r in listed] == [f"{namespace}/sql-helper"]
    assert listed[0]["origin"]["version"] == 1
    assert APIClient().get("/api/v1/adapters", {"hub": "local"}).json()["results"] == []
    hf = APIClient().get(f"/api/models/{namespace}/sql-helper").json()
    assert hf["cardData"]["origin"]["hub"] == origin_server.base_url
    browse = APIClient().get("/adapters/", {"hub": origin_server.base_url}).content.decode()
    assert "<h3>Hub</h3>" in browse and f"{namespace}/sql-helper" in browse
    assert f"{namespace}/sql-helper" not in APIClient().get("/adapters/", {"hub": "local"}).content.decode()
    page = APIClient().get(f"/adapters/{namespace}/sql-helper/v/1").content.decode()
    assert f"Mirrored from <a href=\"{origin_server.base_url}\"" in page and "alice/sql-helper v1" in page
    # The hub re-shares the origin's signed Create with its own followers.
    announce = OutboxActivity.objects.get(type="Announce")
    assert announce.data["object"]["object"]["id"] == activity["object"]["id"]
    offered = {entry["sha256"]: entry["url"] for entry in announce.data["sources"]}
    assert offered[sent["adapter_model.safetensors"]].endswith(
        f"/api/v1/adapters/{namespace}/sql-helper/versions/1/files/adapter_model.safetensors")
    # ...with its own mirror attestation, which the next hub keeps beside the origin's model.sig.
    assert [entry["path"] for entry in announce.data["attestations"]] == [mine]


def test_a_mirrored_copy_verifies_with_model_signing_against_the_origin_key(peer, remote_activity, eager_tasks,
                                                                          tmp_path):
    activity = remote_activity("verifiable", validated=True)
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    assert version.state == VersionState.PUBLISHED, version.state_reason
    namespace = version.repository.owner.username
    folder = tmp_path / "pulled"
    for entry in APIClient().get(f"/api/v1/adapters/{namespace}/verifiable/versions/1/files").json():
        body = APIClient().get(f"/api/v1/adapters/{namespace}/verifiable/versions/1/files/{entry['path']}")
        (folder / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry["path"]).write_bytes(b"".join(body.streaming_content))
    result = verify_folder(folder, public_keys())
    assert [s["predicateType"] for s in result.statements][-1] == MIRROR
    pem = tmp_path / "origin.pem"
    pem.write_bytes(public_keys()[0].pem)
    checked = subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(folder / "model.sig"),
                              "--public_key", str(pem), str(folder)], capture_output=True, text=True, timeout=120,
                             check=False)
    assert checked.returncode == 0, checked.stderr


def test_a_model_sig_the_origin_key_does_not_verify_is_refused(peer, remote_activity, eager_tasks, origin_server,
                                                               tmp_path):
    activity = remote_activity("missigned", validated=True)
    other = ensure_private_key(tmp_path / "other.pem")
    origin_server.files[KEYS] = served_keys([PublicKey(public_key_pem(other))])  # not the key that signed it
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    assert version.state == VersionState.REJECTED and version.origin.fetch_state == FetchState.REFUSED
    assert version.origin.refusal.startswith("model.sig: the origin's signature does not verify with its keys (")
    assert "not one of the keys given" in version.origin.refusal
    assert not OriginSignature.objects.filter(version=version).exists()


def test_the_same_object_twice_is_one_version_and_update_changes_the_card(peer, remote_activity, eager_tasks,
                                                                           origin_server):
    activity = remote_activity()
    activity_received(peer=peer, activity=activity)
    fetched = len(origin_server.requests)
    activity_received(peer=peer, activity=copy.deepcopy(activity))
    update = {**copy.deepcopy(activity), "type": "Update"}
    update["object"]["card"] = "# sql-helper\n\nNow with a better card."
    activity_received(peer=peer, activity=update)
    assert VersionOrigin.objects.count() == 1 and Version.objects.count() == 1
    assert len(origin_server.requests) == fetched
    assert mirrored(activity).card_text.endswith("a better card.")


def test_a_tampered_file_is_refused_with_the_reason_and_never_served(peer, remote_activity, eager_tasks,
                                                                      origin_server):
    activity = remote_activity("tampered")
    path = urlsplit(next(f["url"] for f in activity["object"]["files"]
                         if f["path"] == "adapter_model.safetensors")).path
    origin_server.files[path] = origin_server.files[path][:-4] + b"evil"
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    assert version.state == VersionState.REJECTED
    assert version.origin.fetch_state == FetchState.REFUSED
    assert version.origin.refusal.startswith("adapter_model.safetensors: ")
    assert "does not match the sha256 the origin published" in version.origin.refusal
    assert "does not match the sha256" in version.state_reason
    namespace = version.repository.owner.username
    served = APIClient().get(f"/api/v1/adapters/{namespace}/tampered/versions/1/files/adapter_model.safetensors")
    assert served.status_code == 404


def test_a_blocked_digest_is_refused_from_a_peer_and_from_a_local_upload(peer, remote_activity, eager_tasks,
                                                                         make_user):
    activity = remote_activity("blocked")
    weights = next(f for f in activity["object"]["files"] if f["path"] == "adapter_model.safetensors")
    BlockedDigest.objects.create(sha256=weights["sha256"], reason="malware at its origin")
    activity_received(peer=peer, activity=activity)
    origin = mirrored(activity).origin
    assert origin.fetch_state == FetchState.REFUSED and "denylist" in origin.refusal
    assert not Blob.objects.filter(sha256=weights["sha256"]).exists()

    data = b"some bytes taken down before"
    BlockedDigest.objects.create(sha256=hashlib.sha256(data).hexdigest(), reason="taken down")
    with pytest.raises(BlobRefused, match="denylist"):
        blob_put_stream(stream=io.BytesIO(data))
    bob = make_user("bob")
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=bob, name='t', scope='write').raw}"})
    upload = client.post("/api/v1/adapters/bob/again/versions",
                         {"files": [SimpleUploadedFile("adapter_model.safetensors", data)]}, format="multipart")
    assert upload.status_code == 422, upload.content
    error = upload.json()["error"]
    assert error["code"] == "blocked_digest" and "denylist" in error["message"]


@pytest.mark.parametrize(("policy", "why"), [
    ({"namespaces_block": ["alice"]}, "blocked namespace"),
    ({"namespaces_allow": ["carol"]}, "not allowed"),
    ({"licenses": ["mit"]}, "license"),
    ({"max_bytes": 100}, "too big"),
    ({"mode": "metadata"}, "metadata only"),
])
def test_peer_policies_keep_versions_out(peer, remote_activity, eager_tasks, origin_server, policy, why):
    Peer.objects.filter(pk=peer.pk).update(**policy)
    peer.refresh_from_db()
    activity = remote_activity("filtered")
    activity_received(peer=peer, activity=activity)
    assert mirrored(activity) is None, why
    assert not any("/filtered/" in r for r in origin_server.requests)


def test_items_whose_origin_is_a_blocked_hub_stay_out_even_when_relayed(peer, remote_activity, eager_tasks):
    activity = remote_activity("relayed")
    relay = Peer.objects.create(base_url="http://127.0.0.3:9")
    item = mirroring.parse_version(activity["object"])
    assert mirroring.policy_refusal(relay, item) is None
    Peer.objects.filter(pk=peer.pk).update(state="blocked")
    assert mirroring.policy_refusal(relay, item) == f"its origin {peer.base_url} is a blocked hub here"


def test_review_policy_sends_mirrored_versions_to_the_local_queue(peer, remote_activity, eager_tasks):
    Peer.objects.filter(pk=peer.pk).update(review=True)
    peer.refresh_from_db()
    activity = remote_activity("reviewed")
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    assert version.state == VersionState.PENDING_REVIEW and version.review.status == "open"


def test_an_item_may_only_come_from_its_origin(peer, remote_activity, eager_tasks):
    other = Peer.objects.create(base_url="http://127.0.0.3:9")
    activity = remote_activity("forged")
    with pytest.raises(MirrorRefused) as refused:
        activity_received(peer=other, activity=activity)
    assert refused.value.status == 403 and "only an item's origin hub" in refused.value.message
    unsigned = {"type": "Announce", "object": activity}
    with pytest.raises(MirrorRefused, match="proof"):
        activity_received(peer=other, activity=unsigned)
    assert mirrored(activity) is None


def test_a_takedown_from_the_origin_answers_410_and_blocks_the_digests(peer, remote_activity, eager_tasks,
                                                                       origin_server):
    activity = remote_activity("taken")
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    namespace = version.repository.owner.username
    delete = {"type": "Delete", "object": {"id": activity["object"]["id"], "type": "Tombstone",
                                           "reason": "license violation"}}
    stranger = Peer.objects.create(base_url="http://127.0.0.3:9")
    with pytest.raises(MirrorRefused):
        activity_received(peer=stranger, activity=delete)
    assert Version.objects.get(pk=version.pk).state == VersionState.PUBLISHED

    activity_received(peer=peer, activity=delete)
    version.refresh_from_db()
    assert version.state == VersionState.UNPUBLISHED and version.origin.fetch_state == FetchState.TAKEN_DOWN
    for url in (f"/api/v1/adapters/{namespace}/taken/versions/1",
                f"/api/v1/adapters/{namespace}/taken/versions/1/files/adapter_model.safetensors",
                f"/api/v1/adapters/{namespace}/taken", f"/adapters/{namespace}/taken/v/1"):
        answer = APIClient().get(url)
        assert answer.status_code == 410, (url, answer.status_code)
        assert "license violation" in answer.content.decode()
    hf = APIClient().get(f"/api/models/{namespace}/taken")
    assert hf.status_code == 410 and "license violation" in hf.json()["error"]
    blocked = set(BlockedDigest.objects.values_list("sha256", flat=True))
    held = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    assert {held["adapter_model.safetensors"], held["adapter_model.gguf"]} <= blocked
    # Cards and configs are shared byte for byte by unrelated adapters: never denied.
    assert held["README.md"] not in blocked and held["adapter_config.json"] not in blocked
    assert AuditEntry.objects.filter(action="takedown.origin", target_id=version.pk).exists()
    relayed = OutboxActivity.objects.filter(type="Announce").order_by("-created_at").first()
    assert relayed.data["object"]["type"] == "Delete"


def test_our_own_items_relayed_back_are_ignored(peer, make_user, make_version, eager_tasks):
    version = make_version(make_user("gina"), "homegrown")
    create = create_activity(version)
    for activity in (create, {"type": "Announce", "object": create}, delete_activity(version, "spam"),
                     {"type": "Announce", "object": delete_activity(version, "spam")}):
        activity_received(peer=peer, activity=activity)  # no origin check refusal, no signature fetch: ignored
    assert not VersionOrigin.objects.exists() and not BlockedDigest.objects.exists()
    assert Version.objects.get(pk=version.pk).state == VersionState.PUBLISHED


def test_the_same_takedown_twice_is_relayed_once(peer, remote_activity, eager_tasks):
    activity = remote_activity("twice")
    activity_received(peer=peer, activity=activity)
    delete = {"type": "Delete", "object": {"id": activity["object"]["id"], "type": "Tombstone", "reason": "spam"}}
    activity_received(peer=peer, activity=delete)
    activity_received(peer=peer, activity=copy.deepcopy(delete))
    relayed = [a for a in OutboxActivity.objects.filter(type="Announce") if a.data["object"]["type"] == "Delete"]
    assert len(relayed) == 1
    assert AuditEntry.objects.filter(action="takedown.origin").count() == 1


def test_the_origin_publishing_again_lifts_the_takedown_and_old_activities_replayed_change_nothing(
        peer, remote_activity, eager_tasks):
    activity = remote_activity("back")
    activity["published"] = "2026-01-01T10:00:00Z"
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    namespace = version.repository.owner.username
    url = f"/api/v1/adapters/{namespace}/back/versions/1/files/adapter_model.safetensors"
    delete = {"type": "Delete", "published": "2026-01-02T10:00:00Z",
              "object": {"id": activity["object"]["id"], "type": "Tombstone", "reason": "license unclear"}}
    activity_received(peer=peer, activity=delete)
    assert APIClient().get(url).status_code == 410
    activity_received(peer=peer, activity=copy.deepcopy(activity))  # the old Create, replayed: still gone
    assert APIClient().get(url).status_code == 410 and BlockedDigest.objects.exists()

    again = {**copy.deepcopy(activity), "published": "2026-01-03T10:00:00Z"}
    activity_received(peer=peer, activity=again)
    assert APIClient().get(url).status_code == 200
    assert not BlockedDigest.objects.exists()
    assert Version.objects.get(pk=version.pk).origin.fetch_state == FetchState.MIRRORED
    activity_received(peer=peer, activity=copy.deepcopy(delete))  # the old Delete, replayed: still served
    assert APIClient().get(url).status_code == 200


def test_review_policy_for_takedowns_opens_a_report(peer, remote_activity, eager_tasks):
    Peer.objects.filter(pk=peer.pk).update(takedowns="review")
    peer.refresh_from_db()
    activity = remote_activity("disputed")
    activity_received(peer=peer, activity=activity)
    activity_received(peer=peer, activity={"type": "Delete", "object": {
        "id": activity["object"]["id"], "type": "Tombstone", "reason": "spam"}})
    version = mirrored(activity)
    assert version.state == VersionState.PUBLISHED
    report = Report.objects.get(target_id=version.pk)
    assert "taken down at its origin" in report.comment and "spam" in report.comment


def test_a_flag_from_a_peer_reports_a_local_item(peer, make_user, make_version, eager_tasks):
    version = make_version(make_user("dora"), "local-thing")
    flag = flag_activity(object_id=create_activity(version)["object"]["id"], reason="spam", comment="it is spam")
    assert flag["object"][0].startswith(public_url())
    activity_received(peer=peer, activity=flag)
    report = Report.objects.get(target_id=version.pk)
    assert report.reason == "spam" and "it is spam" in report.comment
    assert report.reporter.username.endswith("__hub") and not report.reporter.has_usable_password()


def test_a_flag_on_a_mirrored_item_is_for_its_origin_not_for_us(peer, remote_activity, eager_tasks):
    activity = remote_activity("not-ours")
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    local_page = f"{public_url()}/adapters/{version.repository.owner.username}/not-ours/v/1"
    activity_received(peer=peer, activity=flag_activity(object_id=local_page, reason="spam", comment="spam"))
    activity_received(peer=peer, activity=flag_activity(object_id=activity["object"]["id"], reason="spam",
                                                        comment="spam"))
    assert not Report.objects.exists()


def test_a_local_report_on_a_mirrored_item_flags_the_origin(peer, remote_activity, eager_tasks, make_user):
    activity = remote_activity("flagged")
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    from hub.moderation.services.reports import report_create

    report_create(reporter=make_user("erin"), kind="adapter", target_id=version.pk, reason="harmful",
                  comment="harmful output")
    flag = OutboxActivity.objects.get(type="Flag")
    assert flag.data["object"] == [activity["object"]["id"]] and flag.data["reason"] == "harmful"
    assert flag.data["to"] == [peer.actor_url]


def test_local_usernames_may_not_contain_the_mirror_separator():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        user_sign_up(username="alice__127.0.0.2-8001", email="a@example.org", password="correct-horse-battery")
    assert "“__”" in str(refused.value) and "mirrored" in str(refused.value)
    assert not User.objects.filter(username__contains="__").exists()


def test_local_publication_and_takedown_go_out_as_create_and_delete(make_user, make_version, eager_tasks):
    from hub.catalog.services import announce_published
    from hub.moderation.models import TakedownKind
    from hub.moderation.services.takedowns import withdraw
    from hub.moderation.targets import target_of_version

    version = make_version(make_user("frank"), "released")
    announce_published(version.pk)
    create = OutboxActivity.objects.get(type="Create")
    assert create.data["object"]["id"] == delete_activity(version, "x")["object"]["id"]
    assert create.data["object"]["files"] and "<a href=" in create.data["object"]["content"]
    with transaction.atomic():
        withdraw(target_of_version(version), kind=TakedownKind.UNPUBLISHED, by=None, reason="license violation")
    delete = OutboxActivity.objects.get(type="Delete")
    assert delete.data["object"]["type"] == "Tombstone" and delete.data["object"]["reason"] == "license violation"
    assert Repository.objects.filter(origin__isnull=True).count() == 1
    assert mirroring.mirror_namespace("frank", "http://127.0.0.2:8001") == "frank__127.0.0.2-8001"
    assert mirroring.mirror_namespace("frank", "http://[::1]:8001") == "frank__1-8001"


def test_a_delete_that_overtakes_its_create_is_not_lost(peer, remote_activity, eager_tasks):
    activity = remote_activity("overtaken")
    delete = {"id": f"{peer.base_url}/federation/activities/1", "type": "Delete",
              "object": {"id": activity["object"]["id"], "type": "Tombstone", "reason": "withdrawn by its author"}}
    InboxActivity.objects.create(activity_id=delete["id"], peer=peer, actor_url=peer.actor_url, type="Delete",
                                 data=delete)  # received while the Create was still being caught up with
    activity_received(peer=peer, activity=delete)
    activity_received(peer=peer, activity=activity)
    assert mirrored(activity) is None


def test_a_takedown_during_review_withdraws_the_version_when_approved(peer, remote_activity, eager_tasks, make_user):
    from hub.accounts.models import Role
    from hub.moderation.services.review import review_item_decide

    Peer.objects.filter(pk=peer.pk).update(review=True)
    peer.refresh_from_db()
    activity = remote_activity("late")
    activity_received(peer=peer, activity=activity)
    version = mirrored(activity)
    activity_received(peer=peer, activity={"type": "Delete", "object": {
        "id": activity["object"]["id"], "type": "Tombstone", "reason": "license violation"}})
    assert Version.objects.get(pk=version.pk).state == VersionState.PENDING_REVIEW
    review_item_decide(item_id=version.review.pk, moderator=make_user("mod", role=Role.MODERATOR), decision="approve")
    version.refresh_from_db()
    assert version.state == VersionState.UNPUBLISHED and "license violation" in version.state_reason
    answer = APIClient().get(f"/api/v1/adapters/{version.repository.owner.username}/late/versions/1")
    assert answer.status_code == 410


def test_files_come_from_any_source_that_has_the_right_bytes(peer, remote_activity, origin_server):
    activity = remote_activity("elsewhere")
    item = mirroring.parse_version(activity["object"])
    weights = next(f for f in item.files if f.path == "adapter_model.safetensors")
    good = origin_server.files.pop(urlsplit(weights.url).path)
    origin_server.files["/evil/copy"] = good[:-1] + b"!"
    origin_server.files["/good/copy"] = good
    blobs, refusal = mirroring.fetch_files(item, {weights.sha256: [f"{peer.base_url}/evil/copy"]})
    assert "adapter_model.safetensors" in refusal and "answered HTTP 404" in refusal and "does not match" in refusal
    assert not Blob.objects.filter(sha256=weights.sha256).exists()
    blobs, refusal = mirroring.fetch_files(item, {weights.sha256: [f"{peer.base_url}/evil/copy",
                                                                   f"{peer.base_url}/good/copy"]})
    assert refusal == "" and blobs["adapter_model.safetensors"].sha256 == weights.sha256


@pytest.mark.parametrize(("change", "field"), [
    ({"repository": {"owner": "bob__evil", "name": "x"}}, "object.repository.owner"),
    ({"repository": {"owner": "bob", "name": "../x"}}, "object.repository.name"),
    ({"kind": "stack"}, "object.kind"),
    ({"files": [{"path": "a", "sha256": "00", "size": 1, "url": "http://127.0.0.2/a"}]}, "object.files[0].sha256"),
    ({"files": [{"path": "a", "sha256": "0" * 64, "size": 1, "url": "file:///etc/passwd"}]}, "object.files[0].url"),
    ({"version": "1"}, "object.version"),
    ({"files": [{"path": "../../etc/passwd", "sha256": "0" * 64, "size": 1, "url": "http://127.0.0.2/a"}]},
     "object.files[0].path"),
    ({"id": "javascript:alert(1)"}, "object.id"),
    ({"files": []}, "object.files"),
])
def test_malformed_objects_are_refused_naming_the_field(change, field):
    one = [{"path": "a", "sha256": "0" * 64, "size": 1, "url": "http://127.0.0.2/a"}]
    obj = {"type": "Document", "id": "http://127.0.0.2:1/adapters/bob/x/v/1", "kind": "adapter", "version": 1,
           "repository": {"owner": "bob", "name": "x"}, "files": one, **change}
    with pytest.raises(MirrorRefused) as refused:
        mirroring.parse_version(obj)
    assert refused.value.message.startswith(field)


def test_a_link_that_is_not_http_is_never_kept():
    obj = {"type": "Document", "id": "http://127.0.0.2:1/adapters/bob/x/v/1", "kind": "adapter", "version": 1,
           "repository": {"owner": "bob", "name": "x", "url": "javascript:alert(1)"},
           "files": [{"path": "a", "sha256": "0" * 64, "size": 1, "url": "http://127.0.0.2/a"}]}
    assert mirroring.parse_version(obj).repository_url == obj["id"]
    announce = {"sources": [{"sha256": "a" * 64, "url": "file:///etc/passwd"},
                            {"sha256": "A" * 64, "url": "http://127.0.0.3/x"}]}
    assert mirroring.announced_sources(announce) == {"a" * 64: ["http://127.0.0.3/x"]}


def test_a_stack_of_a_mirrored_adapter_has_the_hash_it_has_at_the_origin(peer, remote_activity, eager_tasks,
                                                                          origin_server, make_user, make_version,
                                                                          tiny_base_model):
    from hub.stacks.services import stack_recipe_resolve

    activity = remote_activity("stackable")
    activity_received(peer=peer, activity=activity)
    mirror = mirrored(activity)
    # The origin's own copy: the same files under alice/stackable (as alice's hub holds it).
    files = {f["path"]: origin_server.files[urlsplit(f["url"]).path] for f in activity["object"]["files"]}
    make_version(make_user("alice"), "stackable", files=files, base_model=tiny_base_model)

    def recipe_of(name: str):
        return stack_recipe_resolve(request={
            "base_model": "nomoat/tiny-llama", "method": "linear", "output": {"type": "merged", "dtype": "fp32"},
            "adapters": [{"adapter": name, "weight": 0.5}]})[0]

    here, there = recipe_of(f"{mirror.repository.owner.username}/stackable@1"), recipe_of("alice/stackable@1")
    assert [a.ref for a in here.adapters] == [f"{mirror.repository.owner.username}/stackable@1"]  # resolvable here
    assert here.hash == there.hash  # the hash is over content: the same on the origin and on every mirror


def listed_version(activity: dict) -> Version | None:
    """The catalog version a listed item is (state `listed` until its files are held here)."""
    return Version.objects.select_related("repository__owner", "origin").filter(
        origin__object_id=activity["object"]["id"]).first()


def test_a_metadata_peer_s_item_is_listed_with_its_origin_and_its_files_redirect_there(peer, remote_activity,
                                                                                       eager_tasks, origin_server):
    from hub.evals.models import EvalRun
    from hub.stacks.services import StackRequestError, stack_recipe_resolve

    peer.mode = "metadata"
    peer.save()
    activity = remote_activity("listed")
    activity["object"]["summary"] = "Turns questions into SQL"
    asked = len(origin_server.requests)
    activity_received(peer=peer, activity=activity)
    activity_received(peer=peer, activity=copy.deepcopy(activity))  # the same object again: one item
    assert len(origin_server.requests) == asked  # nothing fetched
    version = listed_version(activity)
    assert version is not None and version.state == VersionState.LISTED
    assert Version.objects.filter(origin__object_id=activity["object"]["id"]).count() == 1
    assert not version.files.exists() and version.origin.fetch_state == FetchState.METADATA
    # Nothing that needs the bytes ran for it: no validation, evaluation or signature.
    assert version.validation_report == {} and not EvalRun.objects.filter(version=version).exists()
    assert not OriginSignature.objects.filter(version=version).exists()
    [item] = APIClient().get("/api/v1/federation/items").json()["results"]
    assert item["mode"] == "metadata" and item["name"] == "alice/listed" and item["local"] is None
    assert item["origin"] == {"hub": origin_server.base_url, "url": activity["object"]["repository"]["url"],
                              "owner": "alice", "name": "listed", "version": 1}
    weights = next(f for f in item["files"] if f["path"] == "adapter_model.safetensors")
    assert weights["held_here"] is False and weights["origin_url"].startswith(origin_server.base_url)
    answer = APIClient().get(weights["url"])
    assert answer.status_code == 302 and answer["Location"] == weights["origin_url"]
    missing = APIClient().get(f"/api/v1/federation/items/{item['id']}/files/nope.bin")
    assert missing.status_code == 404 and "expected one of" in missing.json()["error"]["message"]
    # Re-shared with this hub's followers as a mirrored item is: the origin's signed Create, with no copies to offer.
    [announce] = OutboxActivity.objects.filter(type="Announce")
    assert announce.data["object"] == activity and "sources" not in announce.data

    # In the catalog like a mirrored item: the list (and its search and hub filter), the detail, the pages.
    namespace = version.repository.owner.username
    full_name = f"{namespace}/listed"
    for query in ({"search": "listed"}, {"search": "questions SQL"}, {"hub": origin_server.base_url}, {}):
        found = APIClient().get("/api/v1/adapters", query).json()["results"]
        assert [r["full_name"] for r in found] == [full_name], query
        assert found[0]["origin"]["hub"] == origin_server.base_url and found[0]["origin"]["version"] == 1
    assert APIClient().get("/api/v1/adapters", {"hub": "local"}).json()["results"] == []
    detail = APIClient().get(f"/api/v1/adapters/{full_name}/versions/1").json()
    assert detail["state"] == "listed" and detail["origin"] == {
        "hub": origin_server.base_url, "url": activity["object"]["id"], "owner": "alice", "name": "listed",
        "version": 1}
    sent = {f["path"]: f["sha256"] for f in activity["object"]["files"]}
    assert {f["path"]: f["sha256"] for f in detail["files"]} == sent
    assert all(f["held_here"] is False for f in detail["files"])
    [entry] = [f for f in detail["files"] if f["path"] == "adapter_model.safetensors"]
    through = APIClient().get(entry["url"])  # the catalog's file URL -> this hub's route for it -> the origin
    assert through.status_code == 302 and through["Location"] == weights["url"]
    assert through["ETag"] == f'"{sent["adapter_model.safetensors"]}"'
    assert APIClient().get(f"/api/v1/adapters/{full_name}").json()["versions"][0]["state"] == "listed"
    browse = APIClient().get("/adapters/", {"hub": origin_server.base_url}).content.decode()
    assert full_name in browse and full_name in APIClient().get("/adapters/", {"search": "listed"}).content.decode()
    page = APIClient().get(f"/adapters/{full_name}/v/1").content.decode()
    assert f"Listed from <a href=\"{origin_server.base_url}\"" in page and 'id="held-at-origin"' in page
    assert "a download is redirected there" in page and entry["url"] in page
    assert 'id="eval-card"' not in page and 'id="use-this"' not in page
    # The Hugging Face API lists its files, each resolving through the same route.
    hf = APIClient().get(f"/api/models/{full_name}").json()
    assert {s["rfilename"] for s in hf["siblings"]} == set(sent) and hf["cardData"]["origin"]["hub"] == \
        origin_server.base_url
    resolved = APIClient().get(f"/{full_name}/resolve/main/adapter_model.safetensors")
    assert resolved.status_code == 302 and resolved["Location"] == weights["url"]
    assert resolved["X-Linked-Etag"] == f'"{sent["adapter_model.safetensors"]}"'
    # Never a stack input while its files are elsewhere; no eval page either.
    with pytest.raises(StackRequestError):
        stack_recipe_resolve(request={"base_model": "nomoat/tiny-llama", "method": "linear",
                                      "output": {"type": "merged", "dtype": "fp32"},
                                      "adapters": [{"adapter": f"{full_name}@1", "weight": 0.5}]})

    # The origin takes it down: no longer listed anywhere, and its files and pages answer 410.
    delete = delete_activity_for(activity)
    activity_received(peer=peer, activity=delete)
    assert APIClient().get("/api/v1/federation/items").json()["results"] == []
    assert APIClient().get(weights["url"]).status_code == 410
    assert listed_version(activity).state == VersionState.UNPUBLISHED
    assert APIClient().get("/api/v1/adapters", {"search": "listed"}).json()["results"] == []
    for url in (f"/api/v1/adapters/{full_name}/versions/1", entry["url"], f"/adapters/{full_name}/v/1"):
        gone = APIClient().get(url)
        assert gone.status_code == 410 and "spam" in gone.content.decode(), (url, gone.status_code)
    # ...and published there again: listed again, as it was.
    again = copy.deepcopy(activity)
    again["published"] = "2031-01-01T00:00:00+00:00"
    activity_received(peer=peer, activity=again)
    assert listed_version(activity).state == VersionState.LISTED
    assert [r["full_name"] for r in APIClient().get("/api/v1/adapters").json()["results"]] == [full_name]
    assert APIClient().get(weights["url"]).status_code == 302
    relayed = [a.data["object"] for a in OutboxActivity.objects.filter(type="Announce").order_by("pk")]
    assert [(a["type"], a.get("published")) for a in relayed] == [
        ("Create", None), ("Delete", delete["published"]), ("Create", again["published"])]


def test_an_on_demand_peer_s_item_is_fetched_on_first_download_then_served_here(peer, remote_activity,
                                                                                eager_tasks, origin_server):
    peer.mode = "on_demand"
    peer.save()
    activity = remote_activity("lazy")
    asked = len(origin_server.requests)
    activity_received(peer=peer, activity=activity)
    listed = listed_version(activity)
    assert len(origin_server.requests) == asked and listed.state == VersionState.LISTED
    namespace = listed.repository.owner.username
    page = APIClient().get(f"/adapters/{namespace}/lazy/v/1").content.decode()
    assert "the first download fetches the files here" in page
    [item] = APIClient().get("/api/v1/federation/items").json()["results"]
    weights = next(f for f in item["files"] if f["path"] == "adapter_model.safetensors")
    # The catalog's file URL goes through the item's route: the first download starts the fetch.
    through = APIClient().get(f"/api/v1/adapters/{namespace}/lazy/versions/1/files/adapter_model.safetensors")
    assert through.status_code == 302 and through["Location"] == weights["url"]
    first = APIClient().get(through["Location"])
    assert first.status_code == 503 and first["Retry-After"] == "10"
    assert "being fetched from" in first.json()["error"]["message"]
    version = mirrored(activity)  # the fetch ran (eagerly, on commit): fetched, validated, published here
    assert version is not None and version.state == VersionState.PUBLISHED, version and version.state_reason
    assert version.pk == listed.pk and version.number == 1  # the listed version itself, not a second one
    assert version.origin.fetch_state == FetchState.MIRRORED and version.origin.listed_files == []
    assert Version.objects.filter(repository=version.repository).count() == 1
    held = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
    assert version.commit_sha == Version.make_commit_sha(version.repository_id, version.number, list(held.items()))
    fetched = len(origin_server.requests)
    again = APIClient().get(weights["url"])
    assert again.status_code == 302
    assert again["Location"] == f"/api/v1/adapters/{namespace}/lazy/versions/1/files/adapter_model.safetensors"
    served = APIClient().get(again["Location"])
    assert b"".join(served.streaming_content) == origin_server.files[urlsplit(weights["origin_url"]).path]
    assert len(origin_server.requests) == fetched  # served from here
    [listed_item] = APIClient().get("/api/v1/federation/items").json()["results"]
    assert listed_item["state"] == "fetching" and listed_item["local"] == f"{namespace}/lazy@1"
    detail = APIClient().get(f"/api/v1/adapters/{namespace}/lazy/versions/1").json()
    assert detail["state"] == "published" and "held_here" not in detail["files"][0]


def test_an_on_demand_item_whose_origin_serves_other_bytes_is_refused_and_no_longer_listed(peer, remote_activity,
                                                                                            eager_tasks, origin_server):
    peer.mode = "on_demand"
    peer.save()
    activity = remote_activity("lazy-tampered")
    path = urlsplit(next(f["url"] for f in activity["object"]["files"]
                         if f["path"] == "adapter_model.safetensors")).path
    origin_server.files[path] = origin_server.files[path][:-4] + b"evil"
    activity_received(peer=peer, activity=activity)
    namespace = listed_version(activity).repository.owner.username
    file_url = f"/api/v1/adapters/{namespace}/lazy-tampered/versions/1/files/adapter_model.safetensors"
    assert APIClient().get(APIClient().get(file_url)["Location"]).status_code == 503  # the fetch starts
    version = listed_version(activity)
    assert version.state == VersionState.REJECTED and version.origin.fetch_state == FetchState.REFUSED
    assert "does not match the sha256 the origin published" in version.state_reason
    assert APIClient().get("/api/v1/adapters", {"search": "lazy-tampered"}).json()["results"] == []
    assert APIClient().get(file_url).status_code == 404
    [item] = APIClient().get("/api/v1/federation/items").json()["results"]
    refused = APIClient().get(f"/api/v1/federation/items/{item['id']}/files/adapter_model.safetensors")
    assert refused.status_code == 422 and "refused here" in refused.json()["error"]["message"]


def test_items_listed_before_the_catalog_listed_them_get_their_version_once(peer, remote_activity, eager_tasks):
    """A RemoteItem recorded before the catalog listed items (catalog migration 0008) has no version there: the
    catch-up beat lists it, once; one its origin took down stays out."""
    peer.mode = "on_demand"
    peer.save()
    activity, removed = remote_activity("before-listing"), remote_activity("removed-before-listing")
    RemoteItem.objects.create(object_id=activity["object"]["id"], peer=peer, mode="on_demand", activity=activity)
    RemoteItem.objects.create(object_id=removed["object"]["id"], peer=peer, mode="on_demand", activity=removed,
                              state=RemoteItemState.REMOVED)
    assert listed_version(activity) is None
    catch_up_all()
    version = listed_version(activity)
    assert version.state == VersionState.LISTED and version.origin.on_demand
    assert version.origin.fetch_state == FetchState.METADATA and version.origin.peer_url == peer.base_url
    assert [r["full_name"] for r in APIClient().get("/api/v1/adapters").json()["results"]] == [
        f"{version.repository.owner.username}/before-listing"]
    assert listed_version(removed) is None
    assert mirroring.remote_items_list_missing() == 0  # again: nothing more
    assert Version.objects.count() == VersionOrigin.objects.count() == 1
    assert OutboxActivity.objects.filter(type="Announce").count() == 1


def delete_activity_for(create: dict) -> dict:
    """The origin's Delete of a Create's object, as it would send it."""
    return {"type": "Delete", "id": f"{create['object']['id']}#delete", "summary": "spam",
            "published": "2030-01-01T00:00:00+00:00",
            "object": {"id": create["object"]["id"], "type": "Tombstone", "reason": "spam"}}

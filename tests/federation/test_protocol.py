"""Federation protocol on one hub: actors, WebFinger, NodeInfo, signed inboxes and their refusals, follows both
ways, outbox paging and embedded proofs. The other side is a small ActivityPub server on loopback (a thread in
this process) with keys of its own; its requests are signed with apsig, as another implementation would."""

from __future__ import annotations

import base64
import email.utils
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from apsig.draft.sign import Signer
from apsig.proof.sign import ProofSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from django.core.management import CommandError, call_command
from django.test import Client
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.core.errors import ServiceError
from hub.federation import actors, mirroring, outbox, services
from hub.federation import delivery as delivery_module
from hub.federation.delivery import activity_publish, delivery_attempt
from hub.federation.httpsig import body_digest, request_sign, request_verify
from hub.federation.inbox import activity_process, activity_store
from hub.federation.keys import actor_key, ed25519_multibase
from hub.federation.models import (
    Delivery,
    DeliveryState,
    Follow,
    Follower,
    FollowState,
    InboxActivity,
    InboxState,
    OutboxActivity,
    Peer,
    PeerState,
)
from hub.federation.signatures import (
    SignatureRefused,
    embedded_signature_check,
    embedded_signature_sign,
    embedded_signature_verify,
)
from tests.conftest import wait_until

AS_JSON = "application/activity+json"


def _new_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pem


class RemoteHub:
    """A minimal ActivityPub server: one actor (/actor, found by WebFinger as acct:hub@) with an RSA key, an inbox
    that records what is POSTed, an outbox page served from `outbox_items`."""

    def __init__(self) -> None:
        self.key, self.public_pem = _new_key()
        self.proof_key = ed25519.Ed25519PrivateKey.generate()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.outbox_items: list[dict] = []
        self.inbox_status = 202
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, document: dict, status: int = 200) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", AS_JSON)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/actor":
                    self._json(remote.actor_document())
                elif self.path.startswith("/.well-known/webfinger?resource=acct:hub@"):
                    self._json({"links": [{"rel": "self", "type": AS_JSON, "href": remote.actor}]})
                elif self.path == "/.well-known/nodeinfo":
                    self._json({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                                           "href": remote.url("/nodeinfo")}]})
                elif self.path == "/nodeinfo":
                    self._json({"version": "2.1", "software": {"name": "tinypub", "version": "0.1"}})
                elif self.path == "/outbox":
                    self._json({"type": "OrderedCollection", "id": remote.url("/outbox"),
                                "last": remote.url("/outbox?page=true")})
                elif self.path == "/outbox?page=true":  # one page, newest first, that is also the newest
                    self._json({"type": "OrderedCollectionPage", "id": remote.url(self.path),
                                "orderedItems": remote.outbox_items[::-1], "prev": remote.url(self.path)})
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                remote.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self._json({}, remote.inbox_status)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    @property
    def actor(self) -> str:
        return self.url("/actor")

    def actor_document(self) -> dict:
        return {"@context": actors.CONTEXT, "id": self.actor, "type": "Application", "preferredUsername": "hub",
                "inbox": self.url("/inbox"), "outbox": self.url("/outbox"),
                "publicKey": {"id": f"{self.actor}#main-key", "owner": self.actor, "publicKeyPem": self.public_pem},
                "assertionMethod": [{"id": f"{self.actor}#ed25519", "type": "Multikey", "controller": self.actor,
                                     "publicKeyMultibase": ed25519_multibase(self.proof_key.public_key())}]}

    def proved(self, activity: dict) -> dict:
        """The activity with a FEP-8b32 proof by the remote's Ed25519 key (signed by apsig directly)."""
        return ProofSigner(self.proof_key).sign(activity, {
            "type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022", "proofPurpose": "assertionMethod",
            "verificationMethod": f"{self.actor}#ed25519", "created": "2026-01-01T00:00:00Z"})

    def signed_headers(self, url: str, body: bytes, *, key: rsa.RSAPrivateKey | None = None,
                       date: str | None = None, digest: str | None = None) -> dict[str, str]:
        """Signed draft-cavage as the remote; `digest`: the Digest header as sent (else apsig's `SHA-256=…`)."""
        headers = {"content-type": AS_JSON, "date": date or email.utils.formatdate(usegmt=True),
                   **({"digest": digest} if digest else {})}
        signed = Signer(headers=headers, private_key=key or self.key, method="POST", url=url,
                        key_id=f"{self.actor}#main-key", body=body,
                        signed_headers=["(request-target)", "host", "date", "digest"]).sign()
        signed.pop("Authorization")
        return signed

    def activity(self, kind: str = "Create", **fields: object) -> dict:
        return {"@context": "https://www.w3.org/ns/activitystreams", "id": self.url(f"/activities/{uuid.uuid4()}"),
                "type": kind, "actor": self.actor, **fields}

    def inbox_bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def remote() -> Iterator[RemoteHub]:
    hub = RemoteHub()
    hub.thread.start()
    yield hub
    hub.server.shutdown()
    hub.server.server_close()


@pytest.fixture
def hub_url(settings) -> str:
    settings.NOMOAT_PUBLIC_URL = "http://testserver"
    return "http://testserver"


def post_signed(client: Client, remote: RemoteHub, activity: dict | bytes, *, path: str = "/federation/inbox",
                body: bytes | None = None, **sign: object):
    """POST to an inbox of the hub under test, signed by the remote (over `body` when given, so it can differ)."""
    data = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = remote.signed_headers(f"http://testserver{path}", data, **sign)
    return client.generic("POST", path, body if body is not None else data, content_type=AS_JSON,
                          headers={k: v for k, v in headers.items() if k not in ("content-type", "host")})


# --- discovery ---------------------------------------------------------------------------------------------


def test_webfinger_nodeinfo_and_actor_documents(client, make_user, hub_url):
    alice = make_user("alice")
    gone = make_user("gone")
    gone.is_active = False
    gone.save(update_fields=["is_active"])

    found = client.get("/.well-known/webfinger", {"resource": "acct:alice@testserver"})
    assert found.status_code == 200 and found["Content-Type"] == "application/jrd+json"
    self_link = next(link for link in found.json()["links"] if link["rel"] == "self")
    assert self_link == {"rel": "self", "type": AS_JSON, "href": "http://testserver/federation/users/alice"}
    hub = client.get("/.well-known/webfinger", {"resource": "acct:hub@testserver"}).json()
    assert hub["links"][0]["href"] == "http://testserver/federation/actor"
    # A missing, an inactive and a foreign account answer alike.
    for resource in ("acct:nobody@testserver", "acct:gone@testserver", "acct:alice@elsewhere.example"):
        assert client.get("/.well-known/webfinger", {"resource": resource}).status_code == 404
    assert client.get("/.well-known/webfinger").json()["error"] == "bad_resource"

    discovery = client.get("/.well-known/nodeinfo").json()
    assert discovery["links"][0]["href"] == "http://testserver/nodeinfo/2.1"
    info = client.get("/nodeinfo/2.1").json()
    assert info["software"]["name"] == "nomoat" and info["protocols"] == ["activitypub"]
    assert info["usage"]["users"]["total"] == 1

    person = client.get("/federation/users/alice", headers={"Accept": AS_JSON})
    assert person.status_code == 200 and person["Content-Type"] == AS_JSON
    doc = person.json()
    assert doc["type"] == "Person" and doc["preferredUsername"] == "alice"
    assert doc["inbox"] == "http://testserver/federation/users/alice/inbox"
    assert doc["endpoints"]["sharedInbox"] == "http://testserver/federation/inbox"
    assert doc["publicKey"]["id"] == "http://testserver/federation/users/alice#main-key"
    assert doc["publicKey"]["publicKeyPem"] == actor_key(alice).public_key_pem
    assert "PRIVATE" not in json.dumps(doc)
    assert doc["assertionMethod"][0]["publicKeyMultibase"].startswith("z6Mk")
    ld = client.get("/federation/actor",
                    headers={"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'})
    assert ld.json()["type"] == "Application"
    # A browser is sent to the page; unknown and inactive actors are missing.
    assert client.get("/federation/users/alice", headers={"Accept": "text/html"})["Location"] == "/users/alice"
    assert client.get("/federation/users/gone", headers={"Accept": AS_JSON}).status_code == 404
    assert client.get("/federation/users/nobody", headers={"Accept": AS_JSON}).status_code == 404


# --- signed inbox ------------------------------------------------------------------------------------------


def test_signed_post_is_accepted_once_per_activity_id(client, db, remote, hub_url):
    activity = remote.activity("Create", object={"type": "Note", "content": "hello"})
    first = post_signed(client, remote, activity)
    assert first.status_code == 202, first.content
    again = post_signed(client, remote, activity)
    assert again.status_code == 202
    stored = InboxActivity.objects.get()
    assert stored.activity_id == activity["id"] and stored.peer.base_url == remote.url()
    assert stored.state == InboxState.RECEIVED
    # The remote actor's key was fetched once (signed GET) and is cached in the peer's actors.
    assert Peer.objects.get().actors.get().public_key_pem == remote.public_pem


def test_refusals_name_what_is_wrong(client, db, remote, hub_url, settings, caplog):
    activity = remote.activity("Create", object={"type": "Note", "content": "hello"})
    data = json.dumps(activity).encode()

    unsigned = client.post("/federation/inbox", data, content_type=AS_JSON)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unsigned")

    tampered = post_signed(client, remote, activity, body=data.replace(b"hello", b"HELLO"))
    assert (tampered.status_code, tampered.json()["error"]) == (400, "digest_mismatch")

    # The body changed and its Digest recomputed to match: the signature (over the old Digest) no longer holds.
    forged_body = data.replace(b"hello", b"HELLO")
    headers = {**remote.signed_headers("http://testserver/federation/inbox", data), "digest": body_digest(forged_body)}
    forged = client.generic("POST", "/federation/inbox", forged_body, content_type=AS_JSON,
                            headers={k: v for k, v in headers.items() if k not in ("content-type", "host")})
    assert (forged.status_code, forged.json()["error"]) == (401, "bad_signature")

    other_key, _ = _new_key()
    wrong_key = post_signed(client, remote, activity, key=other_key)
    assert (wrong_key.status_code, wrong_key.json()["error"]) == (401, "bad_signature")

    stale = post_signed(client, remote, activity, date=email.utils.formatdate(time.time() - 301, usegmt=True))
    assert stale.status_code == 401 and "replayed or clock skew" in stale.json()["detail"]
    future = post_signed(client, remote, activity, date=email.utils.formatdate(time.time() + 400, usegmt=True))
    assert future.status_code == 401 and future.json()["error"] == "stale_date"

    settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES = 200
    big = post_signed(client, remote, remote.activity("Create", object={"content": "x" * 300}))
    assert (big.status_code, big.json()["error"]) == (413, "too_large")
    settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES = 1024**2

    nul = post_signed(client, remote, remote.activity("Create", object={"content": "a\x00b"}))
    assert (nul.status_code, nul.json()["error"]) == (400, "bad_json") and "NUL" in nul.json()["detail"]
    deep = post_signed(client, remote, b'{"a":' * 100 + b"1" + b"}" * 100)
    assert (deep.status_code, deep.json()["error"]) == (400, "bad_json")
    not_json = post_signed(client, remote, b"not json")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "bad_json")
    no_type = post_signed(client, remote, {"id": activity["id"], "actor": remote.actor})
    assert no_type.status_code == 400 and "type" in no_type.json()["detail"]

    impostor = post_signed(client, remote, {**activity, "actor": "http://127.0.0.9/actor"})
    assert (impostor.status_code, impostor.json()["error"]) == (401, "actor_mismatch")

    assert not InboxActivity.objects.exists()
    services.peer_block(url=remote.url())
    blocked = post_signed(client, remote, activity)
    assert (blocked.status_code, blocked.json()["error"]) == (403, "blocked")
    assert not InboxActivity.objects.exists()
    assert "inbox refused" in caplog.text and "digest_mismatch" in caplog.text


def test_a_digest_algorithm_named_in_lower_case_is_accepted(client, db, remote, hub_url):
    """bovine signs `Digest: sha-256=…` (RFC 3230 names algorithms case-insensitively); the body is still checked."""
    activity = remote.activity("Create", object={"type": "Note", "content": "hello"})
    data = json.dumps(activity).encode()
    lower = "sha-256=" + body_digest(data).partition("=")[2]
    tampered = post_signed(client, remote, activity, digest=lower, body=data.replace(b"hello", b"HELLO"))
    assert (tampered.status_code, tampered.json()["error"]) == (400, "digest_mismatch")
    assert post_signed(client, remote, activity, digest=lower).status_code == 202
    assert InboxActivity.objects.get().activity_id == activity["id"]


def post_rfc9421(client: Client, remote: RemoteHub, activity: dict, *, body: bytes | None = None,
                 key: rsa.RSAPrivateKey | None = None, created: datetime | None = None):
    """POST signed RFC 9421 (http-message-signatures, another library than the hub signs with)."""
    data = json.dumps(activity).encode()

    class Keys(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id: str) -> rsa.RSAPrivateKey:
            return key or remote.key

    request = requests.Request("POST", "http://testserver/federation/inbox", data=data,
                               headers={"Content-Type": AS_JSON}).prepare()
    HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Keys()).sign(
        request, key_id=f"{remote.actor}#main-key", created=created, body=data,
        covered_component_ids=("@method", "@target-uri", "content-type"))
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-type", "content-length")}
    return client.generic("POST", "/federation/inbox", body if body is not None else data, content_type=AS_JSON,
                          headers=headers)


def test_rfc9421_signatures_are_verified_too(client, db, remote, hub_url):
    activity = remote.activity("Create", object={"type": "Note", "content": "hello"})
    assert post_rfc9421(client, remote, activity).status_code == 202
    assert InboxActivity.objects.get().activity_id == activity["id"]

    tampered = post_rfc9421(client, remote, activity, body=json.dumps(activity).encode().replace(b"hello", b"HELLO"))
    assert (tampered.status_code, tampered.json()["error"]) == (400, "digest_mismatch")
    other_key, _ = _new_key()
    wrong = post_rfc9421(client, remote, remote.activity("Create"), key=other_key)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "bad_signature")
    stale = post_rfc9421(client, remote, remote.activity("Create"), created=datetime.now(UTC) - timedelta(seconds=400))
    assert stale.status_code == 401 and "replayed or clock skew" in stale.json()["detail"]
    assert InboxActivity.objects.count() == 1


def _mastodon_signing_string(method: str, path_and_query: str, headers: dict[str, str]) -> bytes:
    """The draft-cavage signing string as Mastodon builds it, written out here rather than by the hub's code:
    `(request-target): get /path?query`, then each header `name: value`, one a line."""
    lines = [f"(request-target): {method.lower()} {path_and_query}"]
    lines += [f"{name}: {headers[name]}" for name in ("host", "date")]
    return "\n".join(lines).encode()


def test_a_signed_get_with_a_query_verifies_both_ways_as_mastodon_signs_it(db, remote, hub_url):
    url, target = "http://testserver/federation/actor/outbox?page=true&max_id=7", "/federation/actor/outbox"
    headers = {"host": "testserver", "date": email.utils.formatdate(usegmt=True)}
    signature = base64.b64encode(remote.key.sign(_mastodon_signing_string("GET", f"{target}?page=true&max_id=7",
                                                                           headers),
                                                 padding.PKCS1v15(), hashes.SHA256())).decode()
    theirs = {**headers, "signature": f'keyId="{remote.actor}#main-key",algorithm="rsa-sha256",'
                                      f'headers="(request-target) host date",signature="{signature}"'}

    def keys(key_id: str, refresh: bool) -> str:
        return remote.public_pem

    assert request_verify(method="GET", url=url, headers=theirs, body=b"", public_key=keys).key_id == \
        f"{remote.actor}#main-key"
    # The query is covered: the same signature on another page, or on the path alone, is refused.
    for other in (url.replace("max_id=7", "max_id=8"), url.partition("?")[0]):
        with pytest.raises(SignatureRefused, match="does not verify"):
            request_verify(method="GET", url=other, headers=theirs, body=b"", public_key=keys)

    # The reverse: what the hub signs verifies against the signing string Mastodon builds for it.
    ours = request_sign(key=actor_key(None), key_id=actors.key_id(None), method="GET", url=url)
    params = dict(part.split("=", 1) for part in ours["Signature"].split(","))
    assert params["headers"] == '"(request-target) host date"'
    public = serialization.load_pem_public_key(actor_key(None).public_key_pem.encode())
    public.verify(base64.b64decode(params["signature"].strip('"')),
                  _mastodon_signing_string("GET", f"{target}?page=true&max_id=7", ours), padding.PKCS1v15(),
                  hashes.SHA256())  # raises InvalidSignature if the query were left out
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(params["signature"].strip('"')),
                      _mastodon_signing_string("GET", target, ours), padding.PKCS1v15(), hashes.SHA256())


def test_key_rotation_refetches_the_actor_once(client, db, remote, hub_url):
    first = post_signed(client, remote, remote.activity("Create", object={"content": "one"}))
    assert first.status_code == 202
    remote.key, remote.public_pem = _new_key()  # the remote rotated its key; ours is cached
    second = post_signed(client, remote, remote.activity("Create", object={"content": "two"}))
    assert second.status_code == 202, second.content
    assert InboxActivity.objects.count() == 2


def test_a_stored_activity_is_processed_once(db, remote, hub_url, monkeypatch):
    received = []
    monkeypatch.setattr(mirroring, "activity_received", lambda *, peer, activity: received.append(activity["id"]))
    peer = services.peer_get_or_create(url=remote.url())
    activity = remote.activity("Create", object={"content": "hi"})
    activity_store(peer=peer, activity=activity)
    activity_store(peer=peer, activity=activity)
    stored = InboxActivity.objects.get()
    assert activity_process(inbox_activity_id=stored.pk) == "handed to mirroring"
    assert activity_process(inbox_activity_id=stored.pk) == "nothing to do"
    assert received == [activity["id"]]


# --- follows -----------------------------------------------------------------------------------------------


def test_follow_of_a_namespace_makes_a_follower_and_an_accept_is_delivered(client, make_user, remote, hub_url):
    alice = make_user("alice")
    follow = remote.activity("Follow", object="http://testserver/federation/users/alice")
    assert post_signed(client, remote, follow, path="/federation/users/alice/inbox").status_code == 202
    assert activity_process(inbox_activity_id=InboxActivity.objects.get().pk) == "follower"
    follower = Follower.objects.get()
    assert (follower.user, follower.actor_url, follower.state) == (alice, remote.actor, FollowState.ACCEPTED)
    delivery = Delivery.objects.get()
    assert delivery.inbox_url == remote.url("/inbox")
    assert delivery_attempt(delivery_id=delivery.pk) == "delivered"
    assert delivery_attempt(delivery_id=delivery.pk) == "nothing to do"  # idempotent per (activity, inbox)
    assert len(remote.received) == 1
    headers, body = remote.received[0]
    accept = json.loads(body)
    assert accept["type"] == "Accept" and accept["object"]["id"] == follow["id"]
    assert accept["actor"] == "http://testserver/federation/users/alice"
    # Signed by alice's key, verifiable by anyone with her public key.
    assert request_verify(method="POST", url=remote.url("/inbox"), headers=headers, body=body,
                          public_key=lambda key_id, refresh: actor_key(alice).public_key_pem).key_id == \
        "http://testserver/federation/users/alice#main-key"
    assert Peer.objects.get().last_delivery_at is not None

    # Undo of the follow removes the follower.
    undo = remote.activity("Undo", object={"id": follow["id"], "type": "Follow", "actor": remote.actor})
    assert post_signed(client, remote, undo).status_code == 202
    assert activity_process(inbox_activity_id=InboxActivity.objects.get(type="Undo").pk) == "unfollowed"
    assert not Follower.objects.exists()


def test_follow_from_a_blocked_peer_is_refused(client, db, remote, hub_url):
    services.peer_block(url=remote.url())
    follow = remote.activity("Follow", object="http://testserver/federation/actor")
    assert post_signed(client, remote, follow).status_code == 403
    assert not Follower.objects.exists()


def test_outgoing_follow_is_delivered_and_accept_triggers_catch_up(client, db, remote, hub_url, make_user):
    admin = make_user("root", role=Role.ADMIN)
    follow = services.follow_create(url=remote.url(), by=admin)  # the hub actor, found by WebFinger acct:hub@
    assert follow.actor_url == remote.actor and follow.namespace == ""
    assert follow.peer.software == "tinypub 0.1"  # from its NodeInfo
    assert services.follow_create(url=remote.actor, by=admin) == follow  # following again changes nothing
    assert follow.state == FollowState.PENDING
    assert delivery_attempt(delivery_id=Delivery.objects.get(activity__activity_id=follow.activity_id).pk) == \
        "delivered"
    sent = remote.inbox_bodies()[-1]
    assert (sent["type"], sent["object"], sent["id"]) == ("Follow", remote.actor, follow.activity_id)
    assert not OutboxActivity.objects.filter(public=True).exists()  # a Follow is not listed in the outbox

    accept = remote.activity("Accept", object={"id": follow.activity_id, "type": "Follow"})
    assert post_signed(client, remote, accept).status_code == 202
    assert activity_process(inbox_activity_id=InboxActivity.objects.get(type="Accept").pk) == "accept"
    follow.refresh_from_db()
    assert follow.state == FollowState.ACCEPTED

    # Catch-up: what the remote published is fed to the inbox path, once, and only its own actors' items.
    remote.outbox_items = [remote.activity("Create", object={"content": str(n)}) for n in range(3)]
    remote.outbox_items.append({**remote.activity("Create"), "actor": "http://127.0.0.9/someone"})
    assert outbox.catch_up(follow=follow) == 3
    assert outbox.catch_up(follow=follow) == 3
    assert InboxActivity.objects.filter(type="Create").count() == 3


def test_follow_targets(db, remote, hub_url):
    host = remote.url().removeprefix("http://")
    assert services.follow_target(remote.url()) == (remote.actor, "")  # WebFinger acct:hub@
    assert services.follow_target(f"hub@{host}") == (remote.actor, "")
    assert services.follow_target(f"@bob@{host}") == (remote.url("/federation/users/bob"), "bob")  # no WebFinger
    assert services.follow_target(remote.url("/federation/users/carol/")) == (remote.url("/federation/users/carol"),
                                                                              "carol")
    with pytest.raises(ServiceError, match="expected an http"):
        services.follow_target("ftp://example.com/x")


def test_an_accept_from_someone_else_does_not_accept_our_follow(client, db, remote, hub_url, make_user):
    follow = services.follow_create(url=remote.actor, by=make_user("root", role=Role.ADMIN))
    Follow.objects.filter(pk=follow.pk).update(actor_url="http://127.0.0.9/actor")
    accept = remote.activity("Accept", object={"id": follow.activity_id, "type": "Follow"})
    assert post_signed(client, remote, accept).status_code == 202
    activity_process(inbox_activity_id=InboxActivity.objects.get(type="Accept").pk)
    follow.refresh_from_db()
    assert follow.state == FollowState.PENDING


def test_failed_delivery_is_retried_with_backoff_then_given_up(db, remote, hub_url, settings, monkeypatch):
    settings.FEDERATION_DELIVERY_MAX_ATTEMPTS = 2
    requeued: list[float] = []  # the countdowns the task was sent again with
    monkeypatch.setattr(delivery_module, "delivery_enqueue",
                        lambda *, delivery_id, countdown=0: requeued.append(countdown))
    activity = activity_publish(actor="hub", activity={"type": "Create", "object": {"content": "x"}},
                                inboxes=["http://127.0.0.1:9/inbox"])  # nothing listens on port 9
    pk = Delivery.objects.get(activity=activity).pk
    assert delivery_attempt(delivery_id=pk) == "retry"
    assert delivery_attempt(delivery_id=pk) == "failed"
    assert requeued == [2.0]
    row = Delivery.objects.get(pk=pk)
    assert row.state == DeliveryState.FAILED and row.attempts == 2 and "127.0.0.1:9" in row.last_error

    # A peer that refuses the activity itself (403: it blocks us) is not asked again; one that is busy (429) is.
    remote.inbox_status = 403
    refused = activity_publish(actor="hub", activity={"type": "Create"}, inboxes=[remote.url("/inbox")])
    assert delivery_attempt(delivery_id=refused.deliveries.get().pk) == "failed"
    remote.inbox_status = 429
    busy = activity_publish(actor="hub", activity={"type": "Create"}, inboxes=[remote.url("/inbox")])
    assert delivery_attempt(delivery_id=busy.deliveries.get().pk) == "retry"
    assert requeued == [2.0, 2.0]


# --- outbox and proofs -------------------------------------------------------------------------------------


def test_outbox_pages_newest_first_with_cursors(client, make_user, hub_url, monkeypatch):
    alice = make_user("alice")
    monkeypatch.setattr(outbox, "PAGE_SIZE", 2)
    published = [activity_publish(actor="alice", activity={"type": "Create", "object": {"content": str(n)}})
                 for n in range(5)]
    private = activity_publish(actor="alice", activity={"type": "Follow", "object": "http://x.example/a"},
                               inboxes=[], public=False)
    collection = client.get("/federation/users/alice/outbox").json()
    assert collection["type"] == "OrderedCollection" and collection["totalItems"] == 5
    first = client.get("/federation/users/alice/outbox?page=true").json()
    assert [i["id"] for i in first["orderedItems"]] == [published[4].activity_id, published[3].activity_id]
    second = client.get(first["next"].removeprefix("http://testserver")).json()
    assert [i["id"] for i in second["orderedItems"]] == [published[2].activity_id, published[1].activity_id]
    oldest = client.get(collection["last"].removeprefix("http://testserver")).json()
    assert [i["id"] for i in oldest["orderedItems"]] == [published[1].activity_id, published[0].activity_id]
    newer = client.get(oldest["prev"].removeprefix("http://testserver")).json()
    assert [i["id"] for i in newer["orderedItems"]] == [published[3].activity_id, published[2].activity_id]
    item = first["orderedItems"][0]
    assert item["actor"] == "http://testserver/federation/users/alice"
    assert item["to"] == [actors.AS_PUBLIC] and item["cc"] == ["http://testserver/federation/users/alice/followers"]
    # Each activity is served at its id, and carries alice's proof.
    served = client.get(item["id"].removeprefix("http://testserver")).json()
    assert served == item
    assert embedded_signature_check(served, lambda method: actor_key(alice).ed25519_public_multibase) == \
        "http://testserver/federation/users/alice#ed25519-key"
    # An activity addressed to one inbox is not served to anyone else: it answers like a missing one.
    missing = client.get(f"/federation/activities/{uuid.uuid4()}")
    hidden = client.get(private.activity_id.removeprefix("http://testserver"))
    assert hidden.status_code == missing.status_code == 404 and hidden.content == missing.content
    assert client.get("/federation/users/alice/outbox?max_id=abc").status_code == 400
    # The hub's outbox lists every namespace's public activities (catching up on a whole hub sees them all).
    hub_own = activity_publish(actor="hub", activity={"type": "Announce", "object": "http://x.example/o"})
    hub_page = client.get("/federation/actor/outbox?page=true&min_id=0").json()
    assert [i["id"] for i in hub_page["orderedItems"]] == [published[1].activity_id, published[0].activity_id]
    assert client.get("/federation/actor/outbox").json()["totalItems"] == 6
    assert client.get("/federation/actor/outbox?page=true").json()["orderedItems"][0]["id"] == hub_own.activity_id
    assert client.get("/federation/users/alice/outbox").json()["totalItems"] == 5
    assert client.get("/federation/users/nobody/outbox").status_code == 404


def test_embedded_proof_of_a_remote_actor_is_verified_with_its_fetched_key(db, remote, hub_url):
    activity = remote.proved(remote.activity("Create", object={"files": [{"sha256": "ab" * 32}]}))
    assert embedded_signature_verify(activity) == remote.actor
    tampered = json.loads(json.dumps(activity))
    tampered["object"]["files"][0]["sha256"] = "cd" * 32
    with pytest.raises(SignatureRefused, match="does not verify"):
        embedded_signature_verify(tampered)
    with pytest.raises(SignatureRefused, match="expected the activity's actor"):
        embedded_signature_verify({**activity, "actor": "http://127.0.0.9/actor"})
    remote.proof_key = ed25519.Ed25519PrivateKey.generate()  # rotated: the cached key is refetched once
    assert embedded_signature_verify(remote.proved(remote.activity("Create"))) == remote.actor


def test_embedded_proof_fails_when_anything_changes(db, hub_url):
    key = actor_key(None)
    signed = embedded_signature_sign({"id": "http://testserver/a/1", "type": "Create", "actor": actors.actor_url(None),
                                      "object": {"files": [{"sha256": "ab" * 32}]}}, key, actors.proof_key_id(None))
    assert embedded_signature_check(signed, lambda method: key.ed25519_public_multibase) == actors.proof_key_id(None)
    tampered = json.loads(json.dumps(signed))
    tampered["object"]["files"][0]["sha256"] = "cd" * 32
    with pytest.raises(SignatureRefused, match="does not verify"):
        embedded_signature_check(tampered, lambda method: key.ed25519_public_multibase)
    with pytest.raises(SignatureRefused, match="no proof"):
        embedded_signature_check({"id": "x"}, lambda method: key.ed25519_public_multibase)


# --- API and pages: permission boundaries ----------------------------------------------------------------------


def _api(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='t', scope='write').raw}")
    return api


def test_federation_api_is_for_admins_only(db, make_user, remote, hub_url):
    admin, alice = make_user("root", role=Role.ADMIN), make_user("alice")
    peer = services.peer_get_or_create(url=remote.url())
    for method, path, data in (("get", "/api/v1/federation/follows", None),
                               ("post", "/api/v1/federation/follows", {"url": remote.actor}),
                               ("get", "/api/v1/federation/peers", None),
                               ("patch", f"/api/v1/federation/peers/{peer.pk}", {"review": True}),
                               ("delete", "/api/v1/federation/follows/1", None)):
        assert getattr(_api(), method)(path, data, format="json").status_code == 401, (method, path)
        assert getattr(_api(alice), method)(path, data, format="json").status_code == 403, (method, path)
    assert not Follow.objects.exists()
    peer.refresh_from_db()
    assert peer.review is False

    api = _api(admin)
    created = api.post("/api/v1/federation/follows", {"url": remote.actor}, format="json")
    assert created.status_code == 202 and created.json()["state"] == "pending"
    assert [f["actor_url"] for f in api.get("/api/v1/federation/follows").json()] == [remote.actor]
    assert api.post("/api/v1/federation/follows", {"url": "ftp://x"}, format="json").status_code == 400
    changed = api.patch(f"/api/v1/federation/peers/{peer.pk}", {"mode": "metadata", "review": True,
                                                               "licenses": ["apache-2.0"]}, format="json")
    assert changed.status_code == 200 and changed.json()["mode"] == "metadata" and changed.json()["review"] is True
    bad = api.patch(f"/api/v1/federation/peers/{peer.pk}", {"mode": "everything"}, format="json")
    assert bad.status_code == 400 and "mode" in json.dumps(bad.json())
    assert api.patch(f"/api/v1/federation/peers/{peer.pk}", {"state": "blocked"}, format="json").json()["state"] == \
        PeerState.BLOCKED
    assert api.delete(f"/api/v1/federation/follows/{created.json()['id']}").status_code == 204
    assert not Follow.objects.exists()
    undo = OutboxActivity.objects.get(type="Undo")
    assert undo.data["object"]["type"] == "Follow" and undo.deliveries.get().inbox_url == remote.url("/inbox")
    assert remote.received == []  # deliveries go through the queue (on commit), not inline
    assert api.get("/api/v1/federation/peers/999999").status_code == 404


def test_federation_page_is_for_admins_only(client, make_user, remote, hub_url):
    make_user("root", role=Role.ADMIN)
    make_user("alice")
    assert client.get("/federation/")["Location"].startswith("/login/")
    client.login(username="alice", password="correct-horse-battery")
    assert client.get("/federation/").status_code == 403
    assert client.post("/federation/peers/block", {"url": remote.url()}).status_code == 403
    assert not Peer.objects.exists()
    client.login(username="root", password="correct-horse-battery")
    followed = client.post("/federation/peers/follow", {"url": remote.url()}, follow=True)
    assert b"Following " + remote.actor.encode() + b": waiting for the peer to accept." in followed.content
    assert b"The whole hub</strong> on " + remote.url().encode() in followed.content and b"tinypub 0.1" in followed.content
    follow = Follow.objects.get()
    assert client.post("/federation/peers/unfollow", {"follow": follow.pk}).status_code == 302
    assert not Follow.objects.exists()
    refused = client.post("/federation/peers/follow", {"url": "not a url"}, follow=True)
    assert b"expected an http(s) URL" in refused.content
    assert client.post("/federation/peers/block", {"url": remote.url()}).status_code == 302
    page = client.get("/federation/")
    assert page.status_code == 200 and remote.url().encode() in page.content and b"Unblock" in page.content
    assert b"{" not in page.content.split(b"<main")[-1].split(b"</main>")[0]  # no raw dicts on the page
    assert b"Federation" in client.get("/").content

    peer = Peer.objects.get()
    prefix = f"peer{peer.pk}-"
    policy = {f"{prefix}mode": "metadata", f"{prefix}review": "on", f"{prefix}takedowns": "review",
              f"{prefix}namespaces_allow": "alice, bob", f"{prefix}licenses": "apache-2.0", f"{prefix}max_bytes": ""}
    saved = client.post(f"/federation/peers/{peer.pk}/policy", policy, follow=True)
    assert b"The policy for " + remote.url().encode() + b" is saved." in saved.content
    peer.refresh_from_db()
    assert (peer.mode, peer.review, peer.takedowns, peer.namespaces_allow, peer.licenses, peer.max_bytes) == (
        "metadata", True, "review", ["alice", "bob"], ["apache-2.0"], None)
    assert b'value="alice, bob"' in saved.content and b"[&#x27;alice" not in saved.content
    bad = client.post(f"/federation/peers/{peer.pk}/policy", {**policy, f"{prefix}max_bytes": "-1"}, follow=True)
    assert b"Largest item (bytes): Ensure this value is greater than or equal to 0." in bad.content
    assert client.post("/federation/peers/explode", {"url": remote.url()}).status_code == 404
    client.login(username="alice", password="correct-horse-battery")
    assert client.post(f"/federation/peers/{peer.pk}/policy", policy).status_code == 403


def test_management_command_follows_lists_and_blocks(db, remote, hub_url):
    out = io.StringIO()
    call_command("federation", "follow", remote.url(), stdout=out)
    assert f"following {remote.actor}: pending" in out.getvalue()
    call_command("federation", "peers", stdout=out)
    assert f"{remote.url()}  allowed  mirror" in out.getvalue() and "hub pending" in out.getvalue()
    call_command("federation", "block", remote.url(), stdout=out)
    assert Peer.objects.get().state == PeerState.BLOCKED
    with pytest.raises(CommandError, match="blocked"):
        call_command("federation", "follow", remote.actor, stdout=out)
    call_command("federation", "unfollow", remote.actor, stdout=out)
    assert not Follow.objects.exists()
    with pytest.raises(CommandError, match="does not follow"):
        call_command("federation", "unfollow", remote.actor, stdout=out)
    with pytest.raises(CommandError, match="that is this hub"):
        call_command("federation", "follow", "http://testserver/federation/actor", stdout=out)


def test_rotating_a_key_serves_the_new_one_and_keeps_the_proof_key(client, make_user, hub_url):
    alice = make_user("alice")
    before = actor_key(alice)
    signed = activity_publish(actor="alice", activity={"type": "Create", "object": {"content": "x"}}).data
    call_command("federation", "rotate-key", "alice", stdout=io.StringIO())
    doc = client.get("/federation/users/alice", headers={"Accept": AS_JSON}).json()
    assert doc["publicKey"]["publicKeyPem"] != before.public_key_pem
    assert doc["publicKey"]["publicKeyPem"] == actor_key(alice).public_key_pem
    methods = {m["id"]: m for m in doc["assertionMethod"]}
    assert doc["assertionMethod"][0]["publicKeyMultibase"] == actor_key(alice).ed25519_public_multibase
    old_id = "http://testserver/federation/users/alice#ed25519-key"  # the retired key, still listed
    assert methods[old_id]["publicKeyMultibase"] == before.ed25519_public_multibase
    assert embedded_signature_check(signed, lambda method: methods[method]["publicKeyMultibase"]) == old_id
    call_command("federation", "revoke-key", old_id, stdout=io.StringIO())
    doc = client.get("/federation/users/alice", headers={"Accept": AS_JSON}).json()
    assert {m["id"]: m for m in doc["assertionMethod"]}[old_id]["revoked"]
    out = io.StringIO()
    call_command("federation", "keys", "alice", stdout=out)
    assert f"{old_id}  ed25519  revoked" in out.getvalue() and "rsa  previous" in out.getvalue()
    with pytest.raises(CommandError, match="expected the username"):
        call_command("federation", "rotate-key", "nobody", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_catch_up_walks_a_nomoat_outbox_page_by_page_from_its_cursor(live_server, make_user, settings, monkeypatch):
    """The hub under test serves alice's outbox over HTTP; a follow of it pages it oldest first through `prev`."""
    settings.NOMOAT_PUBLIC_URL = live_server.url
    monkeypatch.setattr(outbox, "PAGE_SIZE", 2)
    make_user("alice")
    published = [activity_publish(actor="alice", activity={"type": "Create", "object": {"content": str(n)}})
                 for n in range(5)]
    actor_url = f"{live_server.url}/federation/users/alice"
    follow = Follow.objects.create(peer=services.peer_get_or_create(url=actor_url), actor_url=actor_url,
                                   state=FollowState.ACCEPTED, activity_id=f"{live_server.url}/f/1")
    services.remote_actor_get(url=actor_url)
    assert outbox.catch_up(follow=follow) == 5
    order = list(InboxActivity.objects.order_by("pk").values_list("activity_id", flat=True))
    assert order == [a.activity_id for a in published]  # oldest first
    follow.refresh_from_db()
    assert "min_id=" in follow.outbox_cursor and follow.last_error == ""
    later = [activity_publish(actor="alice", activity={"type": "Create", "object": {"content": f"later {n}"}})
             for n in range(3)]
    outbox.catch_up(follow=follow)
    assert list(InboxActivity.objects.order_by("pk").values_list("activity_id", flat=True))[5:] == \
        [a.activity_id for a in later]


# --- real Celery, a live hub -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_follow_over_http_gets_an_accept_through_the_federation_queue(live_server, replace_worker, make_user,
                                                                     remote, settings):
    settings.NOMOAT_PUBLIC_URL = live_server.url
    replace_worker(NOMOAT_PUBLIC_URL=live_server.url)
    make_user("alice")
    target = f"{live_server.url}/federation/users/alice"
    follow = remote.activity("Follow", object=target)
    data = json.dumps(follow).encode()
    inbox = f"{target}/inbox"
    response = requests.post(inbox, data=data, headers=remote.signed_headers(inbox, data), timeout=10)
    assert response.status_code == 202, response.text
    wait_until(lambda: any(b.get("type") == "Accept" for b in remote.inbox_bodies()), timeout=60,
               what="the Accept to be delivered")
    accept = next(b for b in remote.inbox_bodies() if b["type"] == "Accept")
    assert accept["actor"] == target and accept["object"]["id"] == follow["id"]
    assert Follower.objects.get().actor_url == remote.actor
    assert Delivery.objects.get().state == DeliveryState.DELIVERED

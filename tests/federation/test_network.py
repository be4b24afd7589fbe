"""Three real hubs federating on one machine, end to end through public interfaces only.

A, B and C each run a web server and a Celery worker (with beat) on their own loopback address, database, Redis db
and blob store (tests/federation/hubs.py). B follows A, C follows B and A follows B; everything below goes through
the HTTP API, the huggingface_hub client and `nomoat pull`, never a hub's database. Waits are bounded polls.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cli.conftest import NOMOAT
from tests.conftest import wait_until
from tests.federation.hubs import TINY_BASE, Hub, HubError, Network
from tests.hf_client import hf_runner

pytestmark = [pytest.mark.federation]

AS_JSON = {"Accept": 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}
WEIGHTS = "adapter_model.safetensors"
REPLICATION_SECONDS = 240  # publish on one hub → servable on a follower, on a busy two-core machine


def results(body: object) -> list[dict]:
    """A list endpoint's items, paged ({"results": [...]}) or not."""
    return body["results"] if isinstance(body, dict) else list(body)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def follow(follower: Hub, followed_url: str) -> dict:
    response = follower.api("POST", "federation/follows", json={"url": followed_url})
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def follow_state(hub: Hub, follow_id: int) -> dict:
    response = hub.api("GET", f"federation/follows/{follow_id}")
    assert response.status_code == 200, response.text
    return response.json()


def peer_of(hub: Hub, base_url: str) -> dict:
    [peer] = [p for p in results(hub.api("GET", "federation/peers").json()) if p["base_url"] == base_url]
    return peer


def mirrored_version(hub: Hub, repo: str, number: int = 1) -> dict | None:
    """The version's JSON once `hub` serves it to anyone, else None; a rejection there fails at once, with why
    (the admin sees what anonymous clients do not)."""
    seen = hub.api("GET", f"adapters/{repo}/versions/{number}")
    if seen.status_code == 200 and seen.json().get("state") == "rejected":
        pytest.fail(f"hub {hub.name} rejected {repo}@{number}: {seen.json().get('state_reason') or seen.text[:3000]}")
    response = hub.api("GET", f"adapters/{repo}/versions/{number}", token=None)
    return response.json() if response.status_code == 200 and response.json().get("state") == "published" else None


def wait_mirrored(hub: Hub, repo: str, *, timeout: float = REPLICATION_SECONDS) -> dict:
    return wait_until(lambda: mirrored_version(hub, repo), timeout=timeout, interval=1,
                      what=f"{repo} to be served by hub {hub.name}")


def file_bytes(hub: Hub, repo: str, path: str, number: int = 1) -> requests.Response:
    return hub.api("GET", f"adapters/{repo}/versions/{number}/files/{path}", token=None)


def cli_env() -> dict[str, str]:
    """The test run's environment for `nomoat`: no token of the run's, no proxy (the hubs are on loopback)."""
    return {k: v for k, v in os.environ.items() if k not in {"NOMOAT_TOKEN"} and not k.lower().endswith("_proxy")}


@pytest.fixture(scope="module")
def network(hubs: Network) -> Iterator[Network]:
    """B follows A, C follows B and A follows B, each accepted."""
    follows = [(hubs.b, follow(hubs.b, hubs.a.url)), (hubs.c, follow(hubs.c, hubs.b.url)),
               (hubs.a, follow(hubs.a, hubs.b.url))]
    for hub, made in follows:
        wait_until(lambda hub=hub, made=made: follow_state(hub, made["id"])["state"] == "accepted", timeout=120,
                   what=f"hub {hub.name}'s follow of {made.get('url', made)} to be accepted")
    yield hubs


@pytest.fixture(scope="module")
def published(network: Network, make_adapter) -> dict[str, Path]:
    """demo/fed-sql published on A; returns its files by name."""
    folder = make_adapter(rank=4, alpha=8, seed=301)
    network.a.publish("fed-sql", folder)
    network.a.wait_published("demo/fed-sql")
    return {p.name: p for p in folder.iterdir() if p.is_file()}


def test_three_hubs_answer_on_their_own_addresses(hubs: Network):
    seen = set()
    for hub in hubs:
        base_models = hub.api("GET", "base-models", token=None)
        assert base_models.status_code == 200, base_models.text
        assert [m["name"] for m in results(base_models.json())] == [TINY_BASE]
        nodeinfo = requests.get(f"{hub.url}/.well-known/nodeinfo", timeout=30)
        assert nodeinfo.status_code == 200, nodeinfo.text
        [link] = [link["href"] for link in nodeinfo.json()["links"] if "nodeinfo" in link["rel"]][-1:]
        assert link.startswith(hub.url)
        document = requests.get(link, timeout=30).json()
        assert document["software"]["name"] == "nomoat"
        actor = requests.get(f"{hub.url}/federation/actor", headers=AS_JSON, timeout=30)
        assert actor.status_code == 200 and actor.json()["id"].startswith(hub.url)
        seen.add(actor.json()["id"])
    assert len(seen) == 3  # three hubs, three identities


def test_b_receives_a_new_adapter_of_a_and_serves_the_same_bytes(network: Network, published, tmp_path):
    a, b = network.a, network.b
    repo = f"{a.mirrored('demo')}/fed-sql"
    version = wait_mirrored(b, repo)
    listed = results(b.api("GET", "adapters", token=None, params={"hub": a.url}).json())
    [entry] = [item for item in listed if item["name"] == "fed-sql"]
    assert entry["origin"]["hub"] == a.url
    assert entry["origin"]["owner"] == "demo" and entry["origin"]["name"] == "fed-sql"
    assert entry["origin"]["url"].startswith(a.url)
    assert version["origin"]["version"] == 1
    local = results(b.api("GET", "adapters", token=None, params={"hub": "local"}).json())
    assert "fed-sql" not in {item["name"] for item in local}

    expected = {name: sha256(path.read_bytes()) for name, path in published.items()}
    for name, digest in expected.items():
        response = file_bytes(b, repo, name)
        assert response.status_code == 200, (name, response.text)
        assert sha256(response.content) == digest, name

    hf = hf_runner(b.url, tmp_path)
    downloaded = hf("result = open(hf_hub_download(repo_id, filename), 'rb').read().hex()",
                    repo_id=repo, filename=WEIGHTS)
    assert sha256(bytes.fromhex(downloaded)) == expected[WEIGHTS]

    out = tmp_path / "pulled"
    pull = subprocess.run([str(NOMOAT), "pull", repo, "-o", str(out)], capture_output=True, text=True, timeout=300,
                          check=False, env={**cli_env(), "NOMOAT_ENDPOINT": b.url, "HOME": str(tmp_path / "home"),
                                            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                                            "XDG_STATE_HOME": str(tmp_path / "state")})
    assert pull.returncode == 0, pull.stderr
    assert "sha256 verified" in pull.stdout
    assert {name: sha256((out / name).read_bytes()) for name in expected} == expected


def test_c_gets_it_by_announce_from_b_with_a_as_its_origin(network: Network, published):
    a, c = network.a, network.c
    # C follows only B: it hears of A's item from B's Announce, and still names and credits A (whose signature on
    # the original Create it verified), not B.
    version = wait_mirrored(c, f"{a.mirrored('demo')}/fed-sql")
    assert version["origin"]["hub"] == a.url
    assert version["origin"]["owner"] == "demo" and version["origin"]["version"] == 1
    response = file_bytes(c, f"{a.mirrored('demo')}/fed-sql", WEIGHTS)
    assert response.status_code == 200 and sha256(response.content) == sha256(published[WEIGHTS].read_bytes())
    assert c.api("GET", f"adapters/{network.b.mirrored(a.mirrored('demo'))}/fed-sql", token=None).status_code == 404


def pull_folder(hub: Hub, repo: str, folder: Path) -> dict[str, str]:
    """Every file of version 1 of `repo` as an anonymous client gets it from `hub`; {path: sha256}."""
    listed = hub.api("GET", f"adapters/{repo}/versions/1/files", token=None)
    assert listed.status_code == 200, listed.text
    for entry in listed.json():
        body = file_bytes(hub, repo, entry["path"])
        assert body.status_code == 200 and sha256(body.content) == entry["sha256"], entry["path"]
        (folder / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry["path"]).write_bytes(body.content)
    return {entry["path"]: entry["sha256"] for entry in listed.json()}


def current_pem(hub: Hub, folder: Path) -> Path:
    response = requests.get(f"{hub.url}/api/v1/keys/current.pem", timeout=30)
    assert response.status_code == 200, response.text
    (path := folder / f"hub-{hub.name}.pem").write_bytes(response.content)
    return path


def test_a_copy_relayed_a_b_c_verifies_to_a_and_shows_who_signed_what(network: Network, published, tmp_path):
    from tests.provenance.test_signing_engine import MODEL_SIGNING

    a, b, c = network.a, network.b, network.c
    repo = f"{a.mirrored('demo')}/fed-sql"
    wait_mirrored(c, repo)
    keys = tmp_path / "keys"
    keys.mkdir()
    pem = {hub.name: current_pem(hub, keys) for hub in (a, b, c)}
    assert len({p.read_bytes() for p in pem.values()}) == 3  # three hubs, three signing keys
    folder = tmp_path / "from-c"
    on_c = pull_folder(c, repo, folder)
    on_a = {f["path"]: f["sha256"] for f in a.api("GET", "adapters/demo/fed-sql/versions/1/files", token=None).json()}
    # C serves A's signed files byte for byte (model.sig, its attestations, its GGUF LoRA), plus the attestations of
    # the hubs on the way: B's (relayed by B's Announce) and its own.
    assert {p: s for p, s in on_c.items() if not p.startswith("attestations/")} == {
        p: s for p, s in on_a.items() if not p.startswith("attestations/")}
    mirrors = sorted(p for p in on_c if p.startswith("attestations/mirror-"))
    assert [m.split("-")[1:3] for m in mirrors] == sorted([b.namespace_suffix.split("-"),
                                                          c.namespace_suffix.split("-")]), mirrors

    checked = subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(folder / "model.sig"),
                              "--public_key", str(pem["a"]), str(folder)], capture_output=True, text=True,
                             timeout=120, check=False)
    assert checked.returncode == 0 and "Verification succeeded" in checked.stdout, checked.stderr
    wrong = subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(folder / "model.sig"),
                            "--public_key", str(pem["c"]), str(folder)], capture_output=True, text=True,
                           timeout=120, check=False)
    assert wrong.returncode != 0  # signed by A, not by the hub it was pulled from

    env = {**cli_env(), "NOMOAT_ENDPOINT": c.url, "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    verify = subprocess.run([str(NOMOAT), "verify", str(folder)], capture_output=True, text=True, timeout=300,
                            check=False, env=env)  # keys: C's from C, A's and B's from the hubs the attestations name
    assert verify.returncode == 0, verify.stderr
    lines = verify.stdout.splitlines()
    assert lines[1].endswith(f"(current), served by {a.url}"), lines  # model.sig: A's key
    assert any(line.startswith("validated: adapter demo/fed-sql@1 uploaded by demo") for line in lines), lines
    for hub, via in ((b, a), (c, b)):
        assert any(line.startswith("signed by key ") and line.endswith(f"(current), served by {hub.url}:")
                   for line in lines), (hub.name, lines)
        assert any(line.startswith(f"mirrored: as {a.mirrored('demo')}/fed-sql@1 by {hub.url} (received from "
                                   f"{via.url})") and f"with {a.url}'s key" in line for line in lines), lines
    offline = subprocess.run([str(NOMOAT), "verify", "--key", str(pem["a"]), "--key", str(pem["b"]), "--key",
                              str(pem["c"]), str(folder)], capture_output=True, text=True, timeout=300, check=False,
                             env={**env, "NOMOAT_ENDPOINT": "http://127.0.0.1:9"})
    assert offline.returncode == 0, offline.stderr
    only_c = subprocess.run([str(NOMOAT), "verify", "--key", str(pem["c"]), str(folder)], capture_output=True,
                            text=True, timeout=300, check=False, env=env)
    assert only_c.returncode == 3 and "model.sig: signed by key" in only_c.stderr, only_c.stderr

    weights = folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    tampered = subprocess.run([str(NOMOAT), "verify", str(folder)], capture_output=True, text=True, timeout=300,
                              check=False, env=env)
    assert tampered.returncode == 3 and f"{WEIGHTS} was changed" in tampered.stderr, tampered.stderr


def forged_create(a: Hub) -> dict:
    """A Create that claims to come from A's demo namespace, of an object on A that does not exist."""
    actor = f"{a.url}/federation/users/demo"
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{a.url}/federation/activities/forged-1",
            "type": "Create", "actor": actor, "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {"id": f"{a.url}/adapters/demo/forged/v/1", "type": "Document", "attributedTo": actor,
                       "name": "forged", "files": []}}


def test_an_unsigned_or_forged_activity_is_refused_by_the_inbox(network: Network):
    from apsig.draft.sign import Signer
    from cryptography.hazmat.primitives.asymmetric import rsa
    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

    from hub.federation.httpsig import body_digest

    a, b = network.a, network.b
    body = json.dumps(forged_create(a)).encode()
    inbox = f"{b.url}/federation/inbox"
    headers = {"content-type": "application/activity+json", "date": email.utils.formatdate(usegmt=True),
               "digest": body_digest(body)}
    unsigned = requests.post(inbox, data=body, headers=headers, timeout=30)
    assert unsigned.status_code == 401, unsigned.text

    # Signed draft-cavage (as Mastodon signs) under the key id of A's demo actor, but with a key that is not A's.
    key_id = requests.get(f"{a.url}/federation/users/demo", headers=AS_JSON, timeout=30).json()["publicKey"]["id"]
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = Signer(headers=dict(headers), private_key=wrong_key, method="POST", url=inbox, key_id=key_id, body=body,
                    signed_headers=["(request-target)", "host", "date", "digest"]).sign()
    signed.pop("Authorization", None)
    forged = requests.post(inbox, data=body, headers=signed, timeout=30)
    assert forged.status_code == 401, forged.text
    assert "does not verify" in forged.text, forged.text

    # The same forgery signed RFC 9421 (http-message-signatures), which the inbox verifies too.
    message = requests.Request("POST", inbox, data=body, headers={"content-type": headers["content-type"]}).prepare()
    HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256,
                      key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: wrong_key})).sign(
        message, key_id=key_id, covered_component_ids=("@method", "@target-uri", "content-digest"), body=body)
    forged_9421 = requests.Session().send(message, timeout=30)
    assert forged_9421.status_code == 401, forged_9421.text
    assert b.api("GET", f"adapters/{a.mirrored('demo')}/forged", token=None).status_code == 404


def split_signed(files: list[dict]) -> tuple[dict[str, str], dict[str, str]]:
    """A stack's files as ({path: sha256} of its content, {path: sha256} of what the building hub signed)."""
    def signed(path: str) -> bool:
        return path in ("model.sig", "provenance.intoto.jsonl") or path.startswith(("attestations/", "provenance/"))

    return ({f["path"]: f["sha256"] for f in files if not signed(f["path"])},
            {f["path"]: f["sha256"] for f in files if signed(f["path"])})


def test_a_stack_on_c_from_adapters_of_a_and_b_equals_the_same_stack_built_on_a(network: Network, make_adapter):
    a, b, c = network.a, network.b, network.c
    a.publish("fed-x", make_adapter(rank=4, alpha=8, seed=305))
    b.publish("fed-y", make_adapter(rank=8, alpha=8, target_modules=("gate_proj", "down_proj"), seed=306))
    a.wait_published("demo/fed-x")
    b.wait_published("demo/fed-y")
    x_on = {"a": "demo/fed-x", "c": f"{a.mirrored('demo')}/fed-x"}  # each hub's name of the same adapters
    y_on = {"a": f"{b.mirrored('demo')}/fed-y", "c": f"{b.mirrored('demo')}/fed-y"}
    wait_mirrored(a, y_on["a"])
    wait_mirrored(c, x_on["c"])
    wait_mirrored(c, y_on["c"])

    stacks = {}
    for hub in (a, c):
        recipe = {"base_model": TINY_BASE, "method": "linear", "output": {"type": "merged", "dtype": "fp32"},
                  "adapters": [{"adapter": x_on[hub.name], "weight": 0.7}, {"adapter": y_on[hub.name], "weight": 0.5}]}
        response = hub.api("POST", "stacks", json=recipe, token="demo")
        assert response.status_code in (200, 202), response.text
        url = response.json()["url"]

        def ready(hub=hub, url=url) -> dict | None:
            body = hub.api("GET", url, token="demo").json()
            assert body["state"] != "failed", body.get("failure_reason")
            return body if body["state"] == "ready" else None

        stacks[hub.name] = wait_until(ready, timeout=300, interval=1, what=f"the stack on hub {hub.name}")
    on_a, on_c = stacks["a"], stacks["c"]
    # The model (weights, config, tokenizer, manifest) is the same bytes on both hubs; what each hub signed
    # (model.sig, attestations, the inputs' provenance) is signed with its own key, so it cannot be, and is only
    # checked for being there.
    content_a, signed_a = split_signed(on_a["files"])
    content_c, signed_c = split_signed(on_c["files"])
    assert any(path.endswith(".safetensors") for path in content_a), content_a
    assert content_c == content_a
    assert "model.sig" in signed_a and "model.sig" in signed_c
    assert on_c["recipe_hash"] == on_a["recipe_hash"]  # the recipe hash is content-based: the same on every hub
    for file in on_c["files"]:
        body = c.api("GET", file["url"], token="demo").content
        assert sha256(body) == file["sha256"]


def test_a_tampered_blob_is_refused_and_never_served(network: Network, make_adapter):
    a, b = network.a, network.b
    folder = make_adapter(rank=4, alpha=8, seed=302)
    digest = sha256((folder / WEIGHTS).read_bytes())
    repo = f"{a.mirrored('demo')}/fed-tampered"
    # While B is down, A publishes; then someone swaps the weights on A's disk (same size, other bytes), so what B
    # fetches when it is back (A's retried delivery or B's catch-up) is not what A's signed activity names.
    b.stop()
    blob = a.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
    try:
        a.publish("fed-tampered", folder)
        a.wait_published("demo/fed-tampered")
        blob.write_bytes(bytes(byte ^ 0xFF for byte in blob.read_bytes()))
    finally:
        b.start()
    try:
        def refused() -> dict | None:
            seen = b.api("GET", f"adapters/{repo}/versions/1")  # as B's admin: a refused version is still listed
            if seen.status_code == 200 and seen.json()["state"] == "published":
                pytest.fail(f"B published {repo} from a blob that does not match its sha256")
            return seen.json() if seen.status_code == 200 and seen.json()["state"] == "rejected" else None

        version = wait_until(refused, timeout=REPLICATION_SECONDS, interval=1, what=f"B to refuse {repo}")
        assert "sha256" in version["state_reason"] and WEIGHTS in version["state_reason"], version["state_reason"]
        served = file_bytes(b, repo, WEIGHTS)
        assert served.status_code == 404, served.text  # never served: to anyone else it is not there at all
        assert b.api("GET", f"adapters/{repo}", token=None).status_code == 404
    finally:
        blob.write_bytes(bytes(byte ^ 0xFF for byte in blob.read_bytes()))  # A's own copy, as it was


def test_b_down_for_a_while_catches_up(network: Network, make_adapter):
    a, b = network.a, network.b
    b.stop()
    try:
        folder = make_adapter(rank=4, alpha=8, seed=304)
        a.publish("fed-late", folder)
        a.wait_published("demo/fed-late")
    finally:
        b.start()
    repo = f"{a.mirrored('demo')}/fed-late"
    wait_mirrored(b, repo)
    response = file_bytes(b, repo, WEIGHTS)
    assert response.status_code == 200 and sha256(response.content) == sha256((folder / WEIGHTS).read_bytes())


def test_a_takedown_at_a_answers_410_with_its_reason_on_b_and_c(network: Network, make_adapter):
    a, b, c = network.a, network.b, network.c
    a.publish("fed-gone", make_adapter(rank=4, alpha=8, seed=303))  # the same folder again below (built once)
    a.wait_published("demo/fed-gone")
    repo = f"{a.mirrored('demo')}/fed-gone"
    for follower in (b, c):
        wait_mirrored(follower, repo)
        assert file_bytes(follower, repo, WEIGHTS).status_code == 200

    folder = make_adapter(rank=4, alpha=8, seed=303)
    report = a.api("POST", "reports", json={"kind": "adapter", "name": "demo/fed-gone", "reason": "license",
                                            "comment": "the card's license is not the dataset's"})
    assert report.status_code == 201, report.text
    reason = "license violation confirmed by A's moderators"
    resolved = a.api("POST", f"reports/{report.json()['id']}/resolve",
                     json={"resolution": "unpublish", "reason": reason})
    assert resolved.status_code == 200, resolved.text
    for follower in (b, c):
        def gone(hub: Hub = follower) -> dict | None:  # the JSON body of the 410 (a Response of a 410 is falsy)
            response = file_bytes(hub, repo, WEIGHTS)
            return response.json() if response.status_code == 410 else None

        body = wait_until(gone, timeout=120, interval=1, what=f"hub {follower.name} to answer 410 for {repo}")
        assert body["error"]["code"] == "gone" and reason in body["error"]["message"], body
        assert a.url in body["error"]["message"], body  # the origin that took it down is named
    # B keeps the taken-down weights' digest on its denylist: the same bytes cannot re-enter B by another path.
    with pytest.raises(HubError, match="blocked_digest"):
        b.publish("fed-gone-again", folder)


def test_a_blocked_peer_is_refused(network: Network):
    b, c = network.b, network.c
    peer_c = peer_of(b, c.url)
    blocking = {"state": "blocked"}
    assert b.api("PATCH", f"federation/peers/{peer_c['id']}", json=blocking, token="demo").status_code == 403
    assert b.api("PATCH", f"federation/peers/{peer_c['id']}", json=blocking, token=None).status_code == 401
    blocked = b.api("PATCH", f"federation/peers/{peer_c['id']}", json=blocking)
    assert blocked.status_code == 200 and blocked.json()["state"] == "blocked", blocked.text
    try:
        # C asks to follow B's demo namespace: B's inbox refuses every signed request of a blocked peer (403), and
        # C records why on its peer entry for B; the follow is never accepted.
        made = follow(c, f"{b.url}/federation/users/demo")
        refusal = wait_until(lambda: "403" in (peer_of(c, b.url)["last_error"] or "") and peer_of(c, b.url),
                             timeout=120, interval=1, what="C to be refused by B")
        assert "blocked" in refusal["last_error"], refusal["last_error"]
        assert follow_state(c, made["id"])["state"] == "pending"
        assert c.api("DELETE", f"federation/follows/{made['id']}").status_code == 204
    finally:
        b.api("PATCH", f"federation/peers/{peer_c['id']}", json={"state": "allowed"})

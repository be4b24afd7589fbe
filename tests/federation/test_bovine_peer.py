"""Interop with an independent ActivityPub implementation: a real bovine_herd server follows a nomoat namespace.

The peer is bovine_herd 0.5.19 (Helge's server, with bovine's HTTP signatures and bovine_process's inbox and outbox
processing) as its own process, on its own loopback address, with its own sqlite store, from the peers' venv
(tests/peers_venv.sh: bovine pins cryptography<46, which the hub's venv cannot take). tests/federation/bovine_peer.py
adds only what the test needs to drive it: one actor, `watcher`, and loopback /control routes (post a Follow
through watcher's outbox processing, sign a POST or a GET as watcher, read watcher's collections and what its
inbox accepted). Between the two servers everything is their own code over HTTP:

- bovine finds demo@<host:port> by WebFinger, fetches demo's actor with a signed GET and delivers the Follow
  signed with its draft-cavage code (`Digest: sha-256=…`, lower case: nomoat refused it with 401 until
  hub/federation/httpsig.py took the algorithm name case-insensitively);
- nomoat fetches watcher's actor with a signed GET (bovine answers no unsigned one), accepts the Follow and sends
  an Accept signed by demo, which bovine verifies (its inbox answers 401 to a POST it cannot verify, and only a
  verified POST is recorded) and applies to watcher's following;
- bovine's signature over one body with another body sent is refused by nomoat (the same request unchanged is
  accepted);
- demo publishes a version: bovine's inbox receives the Create signed by demo, its content a summary with a link
  to the version's page (what Mastodon shows), and bovine finds it in demo's outbox with signed GETs.

What is not covered: bovine's Moo-Auth and RFC 9421 modes (it signs draft-cavage by default), and Mastodon itself.
The hub is the harness's (tests/federation/hubs.py), one of its own rather than the session's three: a database
named after DATABASE_URL with `_hub_bovine`, and Redis db NOMOAT_BOVINE_HUB_REDIS_DB (default 10).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.federation.hubs import REPO_ROOT, Hub, Process, database_url_for, free_port, postgres_url_or_skip

pytestmark = [pytest.mark.federation]

PEERS_PYTHON = REPO_ROOT / ".venv-peers" / "bin" / "python"
PEER_HOST = "127.0.0.30"
HUB_HOST = "127.0.0.31"
DELIVERY_SECONDS = 240  # publish → the Create in bovine's inbox, on a busy two-core machine


@dataclass
class BovinePeer:
    url: str
    process: Process

    def state(self) -> dict:
        response = requests.get(f"{self.url}/control/state", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def received(self, kind: str) -> list[dict]:
        """What bovine's inbox accepted (its signature verified) of one activity type, with who signed it."""
        return [entry for entry in self.state()["received"] if entry["activity"].get("type") == kind]

    def post_signed(self, url: str, *, signed: dict, sent: dict) -> dict:
        """bovine signs `signed` as watcher and POSTs `sent` to `url`; the receiver's status and body."""
        response = requests.post(f"{self.url}/control/post-changed-body", timeout=60,
                                 json={"url": url, "signed": signed, "sent": sent})
        assert response.status_code == 200, response.text
        return response.json()

    def fetch(self, url: str) -> dict:
        """`url` fetched by bovine with a GET signed as watcher."""
        response = requests.post(f"{self.url}/control/fetch", json={"url": url}, timeout=60)
        assert response.status_code == 200, f"{response.text}\n{self.log()}"
        return response.json()

    def log(self) -> str:
        return self.process.log.read_text(errors="replace")[-6000:]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    url = postgres_url_or_skip()
    from django.conf import settings

    redis_db = int(os.environ.get("NOMOAT_BOVINE_HUB_REDIS_DB", "10"))
    made = Hub(name="bovine", host=HUB_HOST, database_url=database_url_for(url, "hub_bovine"),
               broker_url=f"redis://127.0.0.1:6379/{redis_db}",
               data_dir=Path(settings.DATA_DIR) / "federation" / "hub_bovine")
    try:
        made.prepare()
        made.start()
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def bovine(hub: Hub) -> Iterator[BovinePeer]:
    if not PEERS_PYTHON.exists():
        pytest.fail(f"{PEERS_PYTHON} is missing: run tests/peers_venv.sh (make test does)")
    data_dir = hub.data_dir.parent / "bovine_peer"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    port = free_port(PEER_HOST)
    # Run from its data dir: bovine keeps a JSON-LD cache (bovine_jsonld_cache.sqlite) in the working directory.
    process = Process("bovine", ["env", "-C", str(data_dir), str(PEERS_PYTHON), str(Path(__file__).with_name(
        "bovine_peer.py")), PEER_HOST, str(port), str(data_dir)], data_dir / "bovine.log")
    process.start({k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")})
    peer = BovinePeer(f"http://{PEER_HOST}:{port}", process)
    try:
        wait_until(lambda: _answers(f"{peer.url}/control/state") or not process.running(), timeout=60,
                   what="the bovine_herd peer to come up")
        assert process.running(), peer.log()
        yield peer
    finally:
        process.stop()


def test_bovine_herd_follows_a_namespace_and_receives_its_signed_create(hub: Hub, bovine: BovinePeer,
                                                                        make_adapter):
    demo = f"{hub.url}/federation/users/demo"
    followed = requests.post(f"{bovine.url}/control/follow", timeout=60,
                             json={"account": f"demo@{HUB_HOST}:{hub.port}", "base_url": hub.url})
    assert followed.status_code == 200, f"{followed.text}\n{bovine.log()}"
    assert followed.json()["object"] == demo  # bovine's WebFinger lookup of demo@host:port found nomoat's actor

    # nomoat verified the Follow and answered with an Accept signed by demo, which bovine verified and applied.
    wait_until(lambda: demo in bovine.state()["following"], timeout=120,
               what=f"bovine to follow {demo} (nomoat's Accept)\n{hub.log_tail('worker')}\n{bovine.log()}")
    watcher = bovine.state()["actor"]
    [accept] = bovine.received("Accept")
    assert accept["submitter"] == demo
    follow = accept["activity"]["object"]
    assert (follow["id"] if isinstance(follow, dict) else follow) == followed.json()["follow"]

    # bovine's signature on a body other than the one sent is refused; the same request unchanged is accepted.
    inbox = f"{demo}/inbox"
    again = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow", "actor": watcher,
             "object": demo, "id": f"{watcher}/follows/again", "to": [demo]}
    changed = bovine.post_signed(inbox, signed=again, sent={**again, "object": f"{hub.url}/federation/actor"})
    assert (changed["status"], json.loads(changed["body"])["error"]) == (400, "digest_mismatch"), changed
    unchanged = bovine.post_signed(inbox, signed=again, sent=again)
    assert unchanged["status"] == 202, unchanged

    # bovine's inbox takes no POST it cannot verify: an unsigned Create "from demo" is refused and not recorded.
    forged = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Create", "actor": demo,
              "id": f"{demo}/forged", "object": {"type": "Note", "id": f"{demo}/forged-note", "content": "forged"}}
    refused = requests.post(bovine.state()["inbox_url"], json=forged, timeout=30,
                            headers={"content-type": "application/activity+json"})
    assert refused.status_code == 401, refused.text
    assert not [entry for entry in bovine.state()["received"] if entry["activity"].get("id") == forged["id"]]

    hub.publish("bovine-heard", make_adapter(rank=4, alpha=8, seed=404), summary="heard by a bovine_herd server")
    hub.wait_published("demo/bovine-heard")

    def create_received() -> dict | None:
        creates = [entry for entry in bovine.received("Create")
                   if isinstance(entry["activity"].get("object"), dict)
                   and entry["activity"]["object"].get("name") == "demo/bovine-heard v1"]
        return creates[0] if creates else None

    create = wait_until(create_received, timeout=DELIVERY_SECONDS, interval=1,
                        what=f"bovine's inbox to receive the Create\n{hub.log_tail('worker')}\n{bovine.log()}")
    activity = create["activity"]
    assert create["submitter"] == demo and activity["actor"] == demo  # signed by demo's key, verified by bovine
    version = activity["object"]
    assert version["id"].startswith(f"{hub.url}/") and version["attributedTo"] == demo
    assert f'<a href="{version["id"]}">' in version["content"]
    assert "heard by a bovine_herd server" in version["content"]
    assert requests.get(version["id"], timeout=30).status_code == 200  # the link is the version's page
    assert activity["id"] in bovine.state()["inbox"]  # bovine's processing stored it in watcher's inbox

    # bovine reads demo's outbox with signed GETs and finds the same Create there.
    page = bovine.fetch(bovine.fetch(f"{demo}/outbox")["first"])
    assert activity["id"] in [item.get("id") if isinstance(item, dict) else item for item in page["orderedItems"]]

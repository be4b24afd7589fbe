"""A bovine_herd server (bovine 0.5.19, an independent ActivityPub implementation) as a peer for the interop test.

Runs under the peers' venv (tests/peers_venv.sh), never under the hub's: `.venv-peers/bin/python
tests/federation/bovine_peer.py HOST PORT DATA_DIR`. It is bovine_herd's own app (its sqlite store, its HTTP
signature checks on every inbox POST, its inbox and outbox processing from bovine_process) with one actor,
`watcher`, registered at start-up, and loopback routes under /control for the test to drive it and read
what it did (bovine_herd has no client-to-server API that the test could use without a signed request of its
own):

- POST /control/follow {"account": "name@host:port", "base_url": "http://host:port"}: looks the account up by
  WebFinger (bovine.clients) and posts a Follow through watcher's outbox processing, which bovine delivers
  signed;
- POST /control/post-changed-body {"url": ..., "signed": {...}, "sent": {...}}: signs `signed` as watcher the way
  bovine's own signed POST does (bovine.clients.signed_http_methods.signed_post: the same headers, digest and
  draft-cavage signature) but sends `sent`; answers the receiver's status and body;
- POST /control/fetch {"url": ...}: a GET signed as watcher (bovine's BovineActor.get), its JSON;
- GET /control/state: watcher's actor id and inbox URL, its following and inbox collections (bovine's store), and every
  inbox POST bovine accepted (after its signature check): who signed it (bovine's verified owner of the key) and
  the activity as it came.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import bovine.clients
from bovine.activitystreams import factories_for_actor_object
from bovine.clients.utils import host_target_from_url
from bovine.crypto.http_signature import build_signature
from bovine.utils import get_gmt_now
from bovine_herd import BovineHerd
from bovine_process import handle_outbox_item, process_inbox_item, process_outbox_item
from bovine_process.types import ProcessingItem
from bovine_store import BovineAdminStore
from bovine_store.actor.bovine_store_actor import BovineStoreActor
from bovine_store.models import CollectionItem
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, current_app, request

HANDLE = "watcher"


def build_app(host: str, port: int, data_dir: Path) -> Quart:
    app = Quart(__name__)
    received: list[dict] = []

    async def inbox_task(item: ProcessingItem, actor: BovineStoreActor) -> None:
        # Reached only for a POST whose HTTP signature bovine verified: item.submitter is the key's owner.
        received.append({"submitter": item.submitter, "activity": dict(item.data)})
        app.add_background_task(process_inbox_item, item, actor)

    BovineHerd(app, start_background_task_inbox=inbox_task, db_url=f"sqlite://{data_dir / 'bovine.sqlite3'}")

    @app.before_serving
    async def register_watcher() -> None:
        admin = BovineAdminStore(endpoint_path=f"http://{host}:{port}/endpoints/template")
        app.config["watcher_name"] = await admin.register(HANDLE)

    async def watcher() -> BovineStoreActor:
        return await current_app.config["bovine_store"].actor_for_name(current_app.config["watcher_name"])

    @app.post("/control/follow")
    async def follow() -> tuple[dict, int]:
        wanted = await request.get_json()
        actor = await watcher()
        target, _ = await bovine.clients.lookup_uri_with_webfinger(
            actor.session, f"acct:{wanted['account']}", domain=wanted["base_url"])
        if not target:
            return {"error": f"WebFinger found no actor for {wanted['account']}"}, 404
        activity_factory, _ = factories_for_actor_object(actor.actor_object.build())
        activity = activity_factory.follow(target).build()
        item = await handle_outbox_item(ProcessingItem(actor.actor_id, activity), actor)
        await process_outbox_item(item, actor)  # delivered (signed) before answering
        return {"follow": item.data.get("id"), "object": target}, 200

    @app.post("/control/post-changed-body")
    async def post_changed_body() -> dict:
        wanted = await request.get_json()
        actor = await watcher()
        host, target = host_target_from_url(wanted["url"])
        digest_header, digest = actor.client.digest_method(json.dumps(wanted["signed"]).encode())
        signature = (build_signature(host, "post", target).with_field("date", get_gmt_now())
                     .with_field(digest_header, digest).with_field("content-type", "application/activity+json"))
        headers = {**signature.headers, "signature": signature.sign_for_http_draft(actor.client.secret)}
        async with actor.session.post(wanted["url"], data=json.dumps(wanted["sent"]), headers=headers) as response:
            return {"status": response.status, "body": await response.text()}

    @app.post("/control/fetch")
    async def fetch() -> dict:
        actor = await watcher()
        return await actor.get((await request.get_json())["url"])

    @app.get("/control/state")
    async def state() -> dict:
        actor = await watcher()
        collections = {}
        for name in ("following", "inbox"):
            part_of = getattr(actor.actor_object, name)
            collections[name] = [row.object_id for row in await CollectionItem.filter(part_of=part_of)]
        return {"actor": actor.actor_id, "inbox_url": actor.actor_object.inbox, **collections, "received": received}

    return app


def main() -> None:
    host, port, data_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = Config()
    config.bind = [f"{host}:{port}"]
    asyncio.run(serve(build_app(host, port, data_dir), config))


if __name__ == "__main__":
    main()

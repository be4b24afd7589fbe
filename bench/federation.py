"""Benchmark: federation between two real hubs on loopback, each figure next to its baseline from the same run.

Starts hubs A (127.0.0.2) and B (127.0.0.3) with the federation tests' harness (tests/federation/hubs.py: each its
own PostgreSQL database, Redis db, blob store, web server and one Celery worker with beat), makes B follow A, then,
each part once both hubs' queues are empty:

- replication: --adapters uploads of a tiny adapter on A. Baseline: upload → servable on A (POST answered 202 until
  A serves the weights). Measured: publish → servable on B (from A serving it until B serves the same bytes, which
  B fetched, checked against the sha256 and validated again).
- delivery: --activities activities (default 1,000) published by A's hub actor through the `federation` queue
  (`activity_publish`: outbox, embedded signature, one delivery task per inbox, worker POSTs signed to B's shared
  inbox), until every delivery is recorded delivered. Baseline: the same number of activities POSTed by a plain
  loop (`signed_post`, one after another, from this process) to the same inbox.

This process is configured as hub A (A's database and broker) for the delivery part. Use databases of their own:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nomoat_bench NOMOAT_FEDERATION_REDIS_DBS=11,12 \\
        .venv/bin/python bench/federation.py [--adapters 3] [--activities 1000]

Load average is printed before and after: on a shared machine the figures are only comparable with their load.
Bounded: loopback only; every wait has a timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import wait_until  # noqa: E402 (after the path is set)
from tests.federation.hubs import Hub, Network, redis_dbs_from_env  # noqa: E402

WEIGHTS = "adapter_model.safetensors"


def serves(hub: Hub, repo: str, digest: str) -> bool:
    response = hub.api("GET", f"adapters/{repo}/versions/1/files/{WEIGHTS}", token=None)
    return response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == digest


def replication(network: Network, adapters: list[Path], timeout: float) -> tuple[list[float], list[float]]:
    """For each adapter, uploaded once both hubs are idle: (upload → servable on A, servable on A → servable on B)
    in seconds."""
    a, b = network.a, network.b
    local, replicated = [], []
    for index, folder in enumerate(adapters):
        quiet(network, timeout)  # the previous one's evaluations are done
        name = f"bench-{index}-{uuid.uuid4().hex[:6]}"
        digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
        started = time.perf_counter()
        a.publish(name, folder)
        wait_until(lambda n=name, d=digest: serves(a, f"demo/{n}", d), timeout=timeout, interval=0.2,
                   what=f"demo/{name} on A")
        on_a = time.perf_counter()
        wait_until(lambda n=name, d=digest: serves(b, f"{a.mirrored('demo')}/{n}", d), timeout=timeout, interval=0.2,
                   what=f"demo/{name} on B")
        on_b = time.perf_counter()
        local.append(on_a - started)
        replicated.append(on_b - on_a)
        print(f"  {name}: upload → servable on A {on_a - started:.2f} s, publish → servable on B {on_b - on_a:.2f} s")
    return local, replicated


def delivery(b: Hub, count: int, timeout: float) -> tuple[float, float, float]:
    """(seconds to publish `count` activities, seconds until all are delivered, seconds of the plain POST loop)."""
    from hub.federation import actors
    from hub.federation.client import signed_post
    from hub.federation.delivery import activity_publish
    from hub.federation.models import Delivery, DeliveryState

    def activity() -> dict:  # an activity B's inbox stores, processes and ignores (nothing to mirror)
        return {"type": "Like", "object": actors.actor_url(None)}

    started = time.perf_counter()
    ids = [activity_publish(actor="hub", activity=activity()).pk for _ in range(count)]
    published = time.perf_counter()
    deliveries = Delivery.objects.filter(activity_id__in=ids)
    total = deliveries.count()
    if total < count:
        raise SystemExit(f"only {total} deliveries for {count} activities: does B follow A's hub actor?")

    def delivered() -> bool:
        failed = deliveries.filter(state=DeliveryState.FAILED).first()
        if failed:
            raise SystemExit(f"a delivery failed: {failed.last_error}")
        return not deliveries.exclude(state=DeliveryState.DELIVERED).exists()

    wait_until(delivered, timeout=timeout, interval=0.2, what=f"{count} deliveries")
    queued = time.perf_counter() - started

    inbox = f"{b.url}/federation/inbox"
    plain_started = time.perf_counter()
    for _ in range(count):
        body = {"@context": actors.CONTEXT, "id": actors.absolute(f"/federation/activities/{uuid.uuid4()}"),
                "actor": actors.actor_url(None), **activity()}
        response = signed_post(inbox, body)
        if response.status_code >= 300:
            raise SystemExit(f"plain POST to {inbox}: HTTP {response.status_code}: {response.text[:300]}")
    plain = time.perf_counter() - plain_started
    return published - started, queued, plain


def quiet(network: Network, timeout: float) -> None:
    """Until no hub has a task waiting, twice in a row a second apart (a finished task may enqueue the next)."""
    def idle() -> bool:
        return all(hub.queued() == 0 for hub in network)

    wait_until(lambda: idle() and (time.sleep(1) or idle()), timeout=timeout, interval=1, what="the hubs' queues to drain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapters", type=int, default=3, help="adapters replicated (median reported; 0: skip)")
    parser.add_argument("--activities", type=int, default=1000, help="activities delivered through the queue")
    parser.add_argument("--timeout", type=float, default=900, help="seconds any one wait may take")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nomoat_bench")
    if not base_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL: expected a postgres:// URL (each hub gets a database named after it)")
    data_root = Path(tempfile.mkdtemp(prefix="nomoat-bench-federation-"))
    network = Network.create(["a", "b"], base_database_url=base_url, redis_dbs=redis_dbs_from_env("11,12"),
                             data_root=data_root)
    a, b = network.a, network.b
    os.environ.update({key: a.env[key] for key in ("DATABASE_URL", "CELERY_BROKER_URL", "NOMOAT_DATA_DIR",
                                                   "NOMOAT_PUBLIC_URL", "ALLOWED_HOSTS")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.conf import settings

    from workers.engine.tiny import build_tiny_adapter

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    try:
        network.start()
        follow = b.api("POST", "federation/follows", json={"url": a.url})
        if follow.status_code not in (200, 201, 202):
            raise SystemExit(f"B could not follow A: {follow.status_code} {follow.text}")
        follow_id = follow.json()["id"]

        def accepted() -> bool:
            listed = b.api("GET", "federation/follows").json()
            listed = listed["results"] if isinstance(listed, dict) else listed
            return any(f["id"] == follow_id and f["state"] == "accepted" for f in listed)

        wait_until(accepted, timeout=args.timeout, what="B's follow of A to be accepted")
        base_dir = settings.MODEL_CACHE_DIR / "tiny-llama"  # the base model seed_hub registered on both hubs
        adapters = [build_tiny_adapter(base_dir, data_root / f"adapter-{i}", seed=900 + i) for i in range(args.adapters)]

        local, replicated = [], []
        if adapters:
            print(f"replication of {args.adapters} adapters, A → B:")
            local, replicated = replication(network, adapters, args.timeout)
        quiet(network, args.timeout)  # and the evaluations the publications queued
        print(f"\ndelivery of {args.activities} activities, A → B's shared inbox:")
        publish_s, queued_s, plain_s = delivery(b, args.activities, args.timeout)
    finally:
        network.stop()
    print("\n| measure | seconds | baseline (same run) | seconds | ratio |")
    print("|---|---:|---|---:|---:|")
    if replicated:
        local_median, replicated_median = statistics.median(local), statistics.median(replicated)
        print(f"| publish on A → servable on B (median of {len(replicated)}) | {replicated_median:.2f} | "
              f"upload → servable on A | {local_median:.2f} | {replicated_median / local_median:.2f} |")
    print(f"| {args.activities} activities through the federation queue, all delivered | {queued_s:.2f} | "
          f"plain signed POST loop | {plain_s:.2f} | {queued_s / plain_s:.2f} |")
    print(f"\n  of which publishing (outbox, signature, enqueue): {publish_s:.2f} s; "
          f"queue: {args.activities / queued_s:.1f} activities/s, plain loop: {args.activities / plain_s:.1f}/s")
    print(f"load average after: {os.getloadavg()[0]:.2f}   (hub logs: {data_root})")


if __name__ == "__main__":
    main()

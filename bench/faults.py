"""Faults survived: the fault tests' scenarios (tests/faults/scenarios.py) run once each, with their figures.

    .venv/bin/python bench/faults.py [--down 20]

Starts its own PostgreSQL (initdb, a free port), redis-server, moto S3 server and hub (gunicorn + one Celery worker
with beat) under a fresh directory (tests/faults/cluster.py), then: the database down for --down seconds under
uploads, downloads and a `nomoat push`; the object store the same; Redis restarted with a validation queued, then
running; a worker SIGKILLed mid-validation. Per fault it prints the requests sent while it lasted, how many failed
and how many of those were not a clean 503 with Retry-After, seconds from the fault's end until service (or the
validation) was back, acknowledged work lost, and new blobs that no row names. Baseline, measured in the same run:
an upload validated with no fault (seconds); the ratio is recovery over it. Bounded: loopback only, each wait
capped (two minutes for recovery, four for a validation). Needs root (PostgreSQL runs as `postgres`) or the
postgres user, and /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--down", type=float, default=20, help="seconds each outage lasts (default 20)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nomoat-bench-faults-"))
    os.environ.setdefault("NOMOAT_DATA_DIR", str(root / "runner"))
    os.environ.setdefault("NOMOAT_MODEL_CACHE", str(root / "models"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.conf import settings

    from tests.faults import scenarios
    from tests.faults.cluster import RECOVERY_SETTINGS, Cluster
    from workers.engine.tiny import build_tiny_adapter

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    cluster = Cluster.start(root / "cluster")
    try:
        base = settings.MODEL_CACHE_DIR / "tiny-llama"
        folders = {name: build_tiny_adapter(base, root / "adapters" / name, seed=seed)
                   for seed, name in enumerate(("published", "upload", "push"), start=700)}
        download = scenarios.published_download(cluster, folders["published"], "faults-published")
        started = time.monotonic()
        number = cluster.hub.publish("faults-baseline", folders["upload"])["number"]
        scenarios.wait_validated(cluster, "faults-baseline", number, timeout=240)
        baseline = time.monotonic() - started
        results = [scenarios.outage(cluster, fault, folder=folders["upload"], push_folder=folders["push"],
                                    download=download, down=args.down, home=root / f"push-{i}")
                   for i, fault in enumerate(("database", "object store", "cache and broker"))]
        results += [scenarios.broker_restart(cluster, folders["upload"], running=running) for running in (False, True)]
        results.append(scenarios.worker_killed(cluster, folders["upload"]))
    finally:
        cluster.stop()
    print(f"\nrecovery settings: {RECOVERY_SETTINGS}")
    print("\n| fault | down (s) | requests during | failed | not 503 + Retry-After | recovered after (s) | lost "
          "| blobs without a row | recovery / baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in results:
        print(f"| {f.fault} | {f.down_seconds:.1f} | {f.requests} | {f.failed} | {f.unclean} | "
              f"{f.recover_seconds:.1f} | {f.lost} | {f.orphans} | {f.recover_seconds / baseline:.2f} |")
    print(f"\nbaseline: an upload validated with no fault, {baseline:.1f} s")
    for f in results:
        for note in f.notes:
            print(f"  {f.fault}: {note}")
    print(f"load average after: {os.getloadavg()[0]:.2f}   (logs: {root})")


if __name__ == "__main__":
    main()

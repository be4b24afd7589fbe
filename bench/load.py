"""Load on the catalog endpoints with wrk, against a gunicorn hub this script starts on loopback.

    .venv/bin/python bench/load.py                      # embedded default (SQLite), 10 s per endpoint
    deploy/cluster.sh client .venv/bin/python bench/load.py --target https://hub.cluster.test   # through the proxy
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nomoat_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/load.py --duration 30 --connections 32

It seeds a catalog of --adapters published adapters into a fresh data dir (and the database DATABASE_URL names,
migrated first; use a database of its own), starts gunicorn with `make run`'s own arguments (runhub's
`web_server_argv`, DEBUG off, throttles raised out of the way), then runs `wrk --latency` for --duration seconds
per endpoint, one after another (each after WARM_UP_SECONDS of the same load, not measured: every worker's first
request and the anonymous read cache's first miss), and prints req/s, p50 and p99 per endpoint next to the baseline measured in the same run: a static
file served by WhiteNoise, the cheapest thing the same server does. Load average is printed
before and after: on a shared machine the figures are only comparable with their load. Bounded: loopback only,
at most len(ENDPOINTS) × (--duration + WARM_UP_SECONDS) seconds of load.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# (label, path); the first is the baseline. {adapter} is a published adapter `owner/name`.
ENDPOINTS = [
    ("baseline: static file", "/static/hub.css"),
    ("base models list", "/api/v1/base-models"),
    ("adapters list", "/api/v1/adapters"),
    ("adapters list, filtered", "/api/v1/adapters?tag=sql&ordering=downloads"),
    ("adapters search", "/api/v1/adapters?search=helper"),
    ("adapter detail", "/api/v1/adapters/{adapter}"),
    ("version detail", "/api/v1/adapters/{adapter}/versions/1"),
    ("HF model info", "/api/models/{adapter}"),
    ("small file resolve", "/{adapter}/resolve/main/README.md"),
]
WARM_UP_SECONDS = 2
LATENCY_RE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(adapters: int) -> str:
    """Users and published adapters with small cards; returns one adapter's `owner/name`."""
    import django

    django.setup()
    from django.core.management import call_command

    from hub.accounts.models import User
    from hub.accounts.services import user_create
    from hub.catalog.models import Version, VersionState
    from hub.catalog.services import blob_put_stream, repository_get_or_create, version_create

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("seed_hub", skip_smollm2=True, no_users=True, verbosity=0)
    from hub.catalog.models import BaseModel

    base = BaseModel.objects.get(name="nomoat/tiny-llama")
    owners = [User.objects.filter(username=f"bench{i}").first() or user_create(username=f"bench{i}", password=None)
              for i in range(10)]
    for i in range(adapters):
        owner = owners[i % len(owners)]
        card = (f"---\nlicense: apache-2.0\nbase_model: {base.name}\ntags: [sql, bench{i % 7}]\n"
                f"task: text-generation\n---\n\n# helper {i}\n\nA benchmark adapter number {i}.\n").encode()
        repo = repository_get_or_create(kind="adapter", owner=owner, name=f"helper-{i}", base_model=base)
        if repo.versions.exists():
            continue
        blobs = {"README.md": blob_put_stream(stream=io.BytesIO(card)),
                 "adapter_model.safetensors": blob_put_stream(stream=io.BytesIO(f"weights {i}".encode() * 64))}
        version = version_create(repository=repo, files=blobs, created_by=owner, base_model=base)
        Version.objects.filter(pk=version.pk).update(state=VersionState.PUBLISHED)
    return f"{owners[0].username}/helper-0"


def wrk(url: str, *, duration: int, connections: int, threads: int) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
                          url], capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = {p: float(v) * UNITS_MS[u] for p, v, u in LATENCY_RE.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(rate[1]) if rate else 0.0, "p50": latency.get("50"), "p99": latency.get("99"),
            "non_2xx": int(bad[1]) if bad else 0, "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def published_adapter(base_url: str) -> str:
    """The newest published adapter of a running hub (`owner/name`), for the endpoints that name one."""
    import json
    import ssl

    # The cluster's proxy has a certificate of its own CA (REQUESTS_CA_BUNDLE on its client host); wrk checks none.
    context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE") or None)
    with urlopen(f"{base_url}/api/v1/adapters", timeout=10, context=context) as response:  # noqa: S310 - given
        results = json.load(response)["results"]
    if not results:
        sys.exit(f"{base_url} lists no adapter: publish one first (deploy/cluster.sh e2e does)")
    return results[0]["full_name"]


def run_endpoints(base_url: str, adapter: str, args: argparse.Namespace) -> None:
    """wrk on each endpoint after a warm-up, with the first (the static file) as the baseline of the same run."""
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s")
    print(f"{'endpoint':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>11} {'errors':>7}")
    baseline = None
    for label, path in ENDPOINTS:
        if args.only and args.only not in label and not label.startswith("baseline"):
            continue
        url = base_url + path.format(adapter=adapter)
        # Not measured: every worker's first request of the endpoint and the miss that fills the read cache.
        wrk(url, duration=WARM_UP_SECONDS, connections=args.connections, threads=args.threads)
        result = wrk(url, duration=args.duration, connections=args.connections, threads=args.threads)
        baseline = baseline or result["rps"]
        share = f"{result['rps'] / baseline:.0%}" if baseline else "-"
        p50 = f"{result['p50']:.1f}" if result["p50"] is not None else "-"
        p99 = f"{result['p99']:.1f}" if result["p99"] is not None else "-"
        print(f"{label:32} {result['rps']:9.1f} {p50:>8} {p99:>8} {share:>11} "
              f"{result['non_2xx'] + result['socket_errors']:7d}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", default="2", help="gunicorn worker processes (default 2)")
    parser.add_argument("--adapters", type=int, default=200, help="published adapters to seed (default 200)")
    parser.add_argument("--only", default="", help="run only endpoints whose label contains this text")
    parser.add_argument("--target", default="", help="a running hub's base URL (the cluster's proxy): load it as it "
                                                     "is, seeding and starting nothing")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    if args.target:
        base_url = args.target.rstrip("/")
        print(f"loading {base_url} as it is (its own catalog, its own servers)")
        run_endpoints(base_url, published_adapter(base_url), args)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="nomoat-bench-"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "hub.settings", "NOMOAT_DATA_DIR": str(data_dir), "DEBUG": "false",
        # The load comes from one address, as no real client's does: the per-address limits would answer 429s.
        "THROTTLE_ANONYMOUS_READS_PER_ADDRESS": "100000000/minute",
        "NOMOAT_MODEL_CACHE": os.environ.get("NOMOAT_MODEL_CACHE", str(REPO_ROOT / ".cache" / "models")),
    })
    print(f"seeding {args.adapters} adapters into {data_dir} "
          f"({'PostgreSQL' if os.environ.get('DATABASE_URL', '').startswith('postgres') else 'SQLite'})…", flush=True)
    adapter = seed(args.adapters)

    from hub.catalog.management.commands.runhub import web_server_argv

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = open(data_dir / "gunicorn.log", "w")  # noqa: SIM115 - the server's, for its lifetime
    server = subprocess.Popen([*web_server_argv("127.0.0.1", str(port), workers=args.workers)[:-2],
                               "--access-logfile", "/dev/null"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urlopen(f"{base_url}/static/hub.css", timeout=2).read()  # noqa: S310 - loopback
                break
            except OSError:  # not listening yet, or still loading the hub
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"gunicorn did not answer; see {data_dir / 'gunicorn.log'}")
                time.sleep(0.3)
        print(f"gunicorn asgi × {args.workers}")
        run_endpoints(base_url, adapter, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    main()

"""A hub on servers of its own that can be stopped and started: the fault tests' and bench/faults.py's harness.

Each piece is a real process this module starts and owns, so a fault is a real outage and not a mock: PostgreSQL
(its own cluster from `initdb`, on a free port; stopped with `pg_ctl stop -m fast`, which drops every connection),
Redis (its own `redis-server` on a free port, no persistence: a restart loses every queued message, the worst case
for "no task lost"), an S3-protocol server (moto's ThreadedMotoServer in this process: stopping it refuses every
connection while its objects stay in memory, so starting it again on the same port is the store coming back), and
a hub from tests/federation/hubs.py (runhub's gunicorn and one Celery worker with beat) pointed at them. Short
leases and sweeps keep the recovery of lost work within a test's time; the figures say which were used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port, wait_until
from tests.federation.hubs import Hub, Process

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET = "nomoat-faults"
# The recovery knobs, shortened from their defaults (60, 60, 120 s) so a test waits seconds, not minutes.
RECOVERY_SETTINGS = {"VALIDATION_LEASE_SECONDS": "10", "REQUEUE_EVERY_SECONDS": "5",
                     "REQUEUE_UPLOADED_AFTER_SECONDS": "10", "OUTAGE_RETRY_AFTER_SECONDS": "2"}
# Validation only: publications enqueue evaluations, which would keep a two-core machine busy for minutes.
WORKER_QUEUES = "uploads,federation"


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of its own (trust auth) under a fresh directory, listening on 127.0.0.1:`port`."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o777)  # the postgres user writes its data, socket and log here
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
                       check=True, capture_output=True, timeout=120)
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                                     str(self.root / "postgres.log"), "-w", "-t", "60", "start"]),
                       check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        """Fast shutdown: open sessions are cut off, as when the database host goes away."""
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60",
                                     "stop"]), check=True, capture_output=True, timeout=90)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server of its own on 127.0.0.1:`port`, without persistence."""

    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT)
        import redis

        wait_until(lambda: _answers(redis.Redis.from_url(self.url)), timeout=30, what="redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


def _answers(client: object) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # not listening yet
        return False


class S3Server:
    """moto's S3 server in this process; stop() refuses connections, start() serves the same objects again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


class FaultHub(Hub):
    """A hub whose worker validates only (see WORKER_QUEUES), with beat embedded for the requeue sweeps."""

    def _processes(self) -> list[Process]:
        from hub.catalog.management.commands.runhub import web_server_argv

        return [Process("web", web_server_argv(self.host, str(self.port), workers="1"), self.log_dir / "web.log"),
                Process("worker", self.worker_argv("main", beat=True), self.log_dir / "worker.log")]

    def worker_argv(self, name: str, *, beat: bool) -> list[str]:
        schedule = ["-B", "-s", str(self.data_dir / "celerybeat-schedule")] if beat else []
        return [sys.executable, "-m", "celery", "-A", "hub", "worker", "-Q", WORKER_QUEUES, "--concurrency", "1",
                *schedule, "-l", "INFO", "-n", f"{name}-{self.name}@{self.host}", "--without-gossip",
                "--without-mingle"]

    @property
    def worker(self) -> Process:
        return self.processes[1]

    def extra_worker(self, name: str) -> Process:
        """Another worker (no beat), started; the caller stops or kills it."""
        process = Process(name, self.worker_argv(name, beat=False), self.log_dir / f"{name}.log")
        process.start(self.env)
        wait_until(lambda: "ready." in process.log.read_text(errors="replace").rsplit("===== ", 1)[-1],
                   timeout=180, interval=0.5, what=f"worker {name} to be ready")
        return process


@dataclass
class Cluster:
    pg: PostgresServer
    redis: RedisServer
    s3: S3Server
    hub: FaultHub
    root: Path

    @classmethod
    def start(cls, root: Path) -> Cluster:
        """Every server up, the hub migrated, seeded (the tiny base model, hubadmin and demo) and serving."""
        from django.conf import settings

        root.mkdir(parents=True, exist_ok=True)
        pg = PostgresServer(Path(tempfile.mkdtemp(prefix="nomoat-faults-pg-")))
        redis = RedisServer(root / "redis.log")
        s3 = S3Server()
        pg.init()
        redis.start()
        s3.start()
        s3.client().create_bucket(Bucket=BUCKET)
        hub = FaultHub(name="faults", host="127.0.0.1", database_url=pg.url("nomoat_faults"), broker_url=redis.url,
                       data_dir=root / "hub", extra_env={
                           "BLOB_STORE": f"s3://{BUCKET}/blobs", "S3_ENDPOINT_URL": s3.endpoint,
                           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", **RECOVERY_SETTINGS,
                           # The base model seed_hub converts, where this process builds adapters of it.
                           "NOMOAT_MODEL_CACHE": str(settings.MODEL_CACHE_DIR)})
        cluster = cls(pg, redis, s3, hub, root)
        try:
            hub.prepare()
            hub.start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        self.hub.stop()
        self.s3.stop()
        self.redis.stop()
        self.pg.destroy()

    def sql(self, query: str, *params: object) -> list[tuple]:
        """Rows of a query on the hub's database, read directly (what no API would show: half-recorded rows)."""
        import psycopg

        with psycopg.connect(self.pg.url("nomoat_faults"), connect_timeout=10) as conn:
            return conn.execute(query, params).fetchall()

    def stored_objects(self) -> set[str]:
        """Keys in the bucket (blobs/ab/cd/<sha256> and any blobs/tmp/ leftovers)."""
        keys: set[str] = set()
        for page in self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys |= {item["Key"] for item in page.get("Contents", [])}
        return keys


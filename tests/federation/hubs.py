"""Several real nomoat hubs on one machine, for the federation tests and bench/federation.py.

Each hub gets its own loopback address (127.0.0.2, .3, …) and free port, its own PostgreSQL database (dropped and
created fresh), its own Redis database, its own data dir (file blob store, keys, logs) and NOMOAT_PUBLIC_URL. Its
processes are the ones `make run` starts, trimmed for two cores: `migrate` and `seed_hub --skip-smollm2` (the tiny
base model only), the web server with runhub's own arguments (`web_server_argv`, one worker) and ONE Celery worker
consuming every queue the tests need, with beat embedded. A hub is driven only through its public interfaces (HTTP)
and its processes; the only Django this process needs is configured settings (to import runhub's argv), so
bench/federation.py uses this module as well as the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.pool import ThreadPool
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from tests.conftest import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
QUEUES = "uploads,federation,builds,evals"
ADMIN = ("hubadmin", "nomoat-admin-password")  # seed_hub's development defaults (DEMO_USERS)
DEMO = ("demo", "nomoat-demo-password")
TINY_BASE = "nomoat/tiny-llama"
# Settings a hub takes from its own environment, never from the test run's (whose data dir, blob store and keys
# are the suite's own).
PER_HUB = ("DATABASE_URL", "CELERY_BROKER_URL", "NOMOAT_DATA_DIR", "BLOB_STORE", "BLOB_CACHE_DIR", "NOMOAT_WORK_DIR",
           "SIGNING_KEY_DIR", "NOMOAT_SIGNING_KEY", "NOMOAT_UPLOAD_DIR", "NOMOAT_TRAINING_DIR", "NOMOAT_PUBLIC_URL",
           "S3_ENDPOINT_URL", "BLOB_MIRROR_URLS", "ALLOWED_HOSTS", "HOST", "PORT", "DJANGO_ALLOW_ASYNC_UNSAFE")
# Quick and predictable on a shared two-core machine: no sampling of trusted uploads into review, no anonymous
# read cache (a follower's list must show a mirrored item as soon as it is there), small evaluation suites, and
# throttles out of the way of a test that signs in and uploads faster than a person.
HUB_SETTINGS = {"TRUSTED_SAMPLE_RATE": "0", "ANONYMOUS_CACHE_SECONDS": "0", "EVAL_MAX_DOCS": "3",
                "EVAL_MAX_ITEMS": "40", "PYTHONUNBUFFERED": "1", "WEB_WORKERS": "1", "LOG_LEVEL": "INFO",
                "THROTTLE_SIGNIN_PER_ACCOUNT": "1000/minute", "THROTTLE_SIGNIN_PER_ADDRESS": "1000/minute",
                "THROTTLE_TOKENS_PER_ACCOUNT": "1000/hour", "THROTTLE_TOKENS_PER_ADDRESS": "1000/hour",
                "THROTTLE_UPLOADS_PER_USER": "1000/hour", "THROTTLE_STACK_BUILDS_PER_USER": "1000/hour",
                "THROTTLE_ANONYMOUS_READS_PER_ADDRESS": "100000/minute", "STACK_BUILDS_CONCURRENT_PER_USER": "100",
                # A hub that was down pages its peers' outboxes this often (the default is a minute).
                "FEDERATION_CATCH_UP_EVERY_SECONDS": "20"}


class HubError(RuntimeError):
    """A hub's process failed or did not come up (the message carries the end of its log), or the hub refused what
    the harness asked of it (the message has its answer)."""


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def postgres_url_or_skip() -> str:
    """The run's DATABASE_URL, which each hub's own database is named after; the hubs need PostgreSQL."""
    import pytest

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the federation tests run hubs, each on a PostgreSQL database of its own: "
                    "set DATABASE_URL to a postgres:// URL")
    return url


def database_url_for(base_url: str, suffix: str) -> str:
    """The test run's PostgreSQL URL with `_<suffix>` appended to the database name."""
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "nomoat"
    return urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def database_recreate(url: str) -> None:
    """DROP (forcing out any session left by an earlier run) and CREATE the database `url` names."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path.lstrip("/"))))


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        with open(self.log, "a") as out:
            out.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv[1:6])} …\n")
            out.flush()
            # A session of its own: stop() takes the whole group (gunicorn's worker, Celery's pool and beat).
            self.proc = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of its group is left
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Hub:
    """One hub: its address, database, Redis db and data dir, and its web server and worker processes."""

    name: str
    host: str
    database_url: str
    broker_url: str
    data_dir: Path
    port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)

    def _processes(self) -> list[Process]:
        """runhub's web server (one worker) and one Celery worker on every queue, beat embedded. Built on first
        start, so a Hub can be described before Django is configured (bench/federation.py configures it as A)."""
        from hub.catalog.management.commands.runhub import web_server_argv

        celery = [sys.executable, "-m", "celery", "-A", "hub", "worker", "-Q", QUEUES, "--concurrency", "1", "-B",
                  "-s", str(self.data_dir / "celerybeat-schedule"), "-l", "INFO", "-n", f"hub-{self.name}@{self.host}",
                  "--without-gossip", "--without-mingle"]
        return [Process("web", web_server_argv(self.host, str(self.port), workers="1"), self.log_dir / "web.log"),
                Process("worker", celery, self.log_dir / "worker.log")]

    # --- addresses and environment ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def namespace_suffix(self) -> str:
        """How a follower names this hub's namespaces: `<owner><separator><host>-<port>` (the federation contract)."""
        return f"{self.host}-{self.port}"

    def mirrored(self, owner: str) -> str:
        """The namespace a follower gives this hub's `owner`."""
        from hub.accounts.models import MIRROR_SEPARATOR

        return f"{owner}{MIRROR_SEPARATOR}{self.namespace_suffix}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PER_HUB}
        return env | HUB_SETTINGS | {
            "DATABASE_URL": self.database_url, "CELERY_BROKER_URL": self.broker_url,
            "NOMOAT_DATA_DIR": str(self.data_dir), "NOMOAT_PUBLIC_URL": self.url, "HOST": self.host,
            "PORT": str(self.port), "ALLOWED_HOSTS": f"{self.host},127.0.0.1,localhost",
        } | self.extra_env

    # --- life cycle ----------------------------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`manage.py <args>` with this hub's environment; a failure raises HubError with its output."""
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, text=True,
                                capture_output=True, timeout=timeout, check=False)
        with open(self.log_dir / "manage.log", "a") as out:
            out.write(f"\n===== manage.py {' '.join(args)} (exit {result.returncode})\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise HubError(f"hub {self.name}: manage.py {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result

    def prepare(self) -> None:
        """A fresh database, Redis db and data dir; migrated and seeded (the tiny base model, hubadmin and demo)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        database_recreate(self.database_url)
        redis_flush(self.broker_url)
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("seed_hub", "--skip-smollm2")

    def start(self, timeout: float = 180) -> None:
        """Start the web server and the worker (again, after stop()); return once both are up."""
        env = self.env
        self.processes = self.processes or self._processes()
        for process in self.processes:
            if not process.running():
                process.start(env)
        wait_until(self._up, timeout=timeout, interval=0.5, what=f"hub {self.name} at {self.url} to come up")

    def _up(self) -> bool:
        for process in self.processes:
            if not process.running():
                raise HubError(f"hub {self.name}: {process.name} exited with {process.proc.returncode if process.proc else '?'}:\n"
                               f"{self.log_tail(process.name)}")
        worker_log = (self.log_dir / "worker.log").read_text(errors="replace")
        if "ready." not in worker_log.rsplit("===== ", 1)[-1]:
            return False
        try:
            return requests.get(f"{self.url}/api/v1/base-models", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def queued(self) -> int:
        """Tasks waiting in this hub's broker (its Redis db), on every queue its worker consumes."""
        import redis

        client = redis.Redis.from_url(self.broker_url)
        return sum(client.llen(queue) for queue in QUEUES.split(","))

    def stop(self) -> None:
        """Stop every process of this hub (SIGTERM, then SIGKILL of its process group); the data stays."""
        for process in self.processes:
            process.stop()

    def destroy(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            database_drop(self.database_url)

    def log_tail(self, name: str | None = None, chars: int = 4000) -> str:
        """The end of one process's log (web, worker, manage), or of all of them; without the 404s that polling
        for an item not there yet leaves (the whole logs stay in the log dir)."""
        names = [name] if name else ["manage", "web", "worker"]
        parts = []
        for each in names:
            path = self.log_dir / f"{each}.log"
            if path.exists():
                lines = [line for line in path.read_text(errors="replace").splitlines()
                         if "Not Found: " not in line and '" 404 ' not in line]
                parts.append(f"--- hub {self.name} {each}.log ({path}) ---\n" + "\n".join(lines)[-chars:])
        return "\n".join(parts)

    # --- HTTP ------------------------------------------------------------------------------------------------------

    def token(self, who: str = "admin") -> str:
        """An API token (write) for `admin` (hubadmin) or `demo` (a trusted uploader), made once per hub start-up."""
        if who not in self.tokens:
            username, password = {"admin": ADMIN, "demo": DEMO}[who]
            response = requests.post(f"{self.url}/api/v1/auth/tokens", timeout=30, json={
                "username": username, "password": password, "name": f"federation-tests-{who}", "scope": "write"})
            if response.status_code != 201:
                raise HubError(f"hub {self.name}: no token for {username}: {response.status_code} {response.text}")
            self.tokens[who] = response.json()["token"]
        return self.tokens[who]

    def api(self, method: str, path: str, *, json: object = None, token: str | None = "admin",
            **kwargs: object) -> requests.Response:
        """A request to this hub; `path` is relative to /api/v1/ unless it starts with '/' or is a full URL.
        `token`: 'admin', 'demo', a raw token, or None (anonymous)."""
        url = path if path.startswith("http") else f"{self.url}{path if path.startswith('/') else '/api/v1/' + path}"
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            raw = self.token(token) if token in ("admin", "demo") else token
            headers["Authorization"] = f"Bearer {raw}"
        return requests.request(method, url, json=json, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)

    def publish(self, name: str, folder: Path, *, owner_token: str = "demo", summary: str = "") -> dict:
        """Upload a folder as a new adapter version of demo/<name> (multipart, the public API); returns the 202 body."""
        files = [("files", (p.name, p.read_bytes())) for p in sorted(folder.iterdir()) if p.is_file()]
        response = self.api("POST", f"adapters/demo/{name}/versions", token=owner_token, files=files,
                            data={"base_model": TINY_BASE, "summary": summary or f"{name}, for the federation tests"})
        if response.status_code != 202:
            raise HubError(f"hub {self.name}: upload of demo/{name} answered {response.status_code}: {response.text}")
        return response.json()

    def wait_published(self, repo: str, number: int = 1, *, timeout: float = 300) -> dict:
        """Until version `number` of the adapter `repo` is published here; returns the version's JSON."""
        state: dict = {}

        def published() -> bool:
            state.clear()
            state.update(self.api("GET", f"adapters/{repo}/versions/{number}").json())
            if state.get("state") in {"rejected", "failed"}:
                raise HubError(f"hub {self.name}: {repo}@{number} was {state['state']}: {json.dumps(state)[:3000]}")
            return state.get("state") == "published"

        wait_until(published, timeout=timeout, interval=1, what=f"{repo}@{number} to be published on hub {self.name}")
        return state


@dataclass
class Network:
    """Hubs named a, b, c … on 127.0.0.2, .3, .4 …"""

    hubs: dict[str, Hub]

    def __getattr__(self, name: str) -> Hub:
        try:
            return self.__dict__["hubs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self):
        return iter(self.hubs.values())

    @classmethod
    def create(cls, names: list[str], *, base_database_url: str, redis_dbs: list[int], data_root: Path,
               redis_host: str = "127.0.0.1:6379", extra_env: dict[str, str] | None = None) -> Network:
        if len(redis_dbs) < len(names):
            raise ValueError(f"{len(names)} hubs need {len(names)} Redis databases, got {redis_dbs}")
        hubs = {}
        for index, name in enumerate(names):
            hubs[name] = Hub(name=name, host=f"127.0.0.{index + 2}",
                             database_url=database_url_for(base_database_url, f"hub_{name}"),
                             broker_url=f"redis://{redis_host}/{redis_dbs[index]}", data_dir=data_root / f"hub_{name}",
                             extra_env=dict(extra_env or {}))
        return cls(hubs)

    def start(self) -> None:
        """Prepare every hub (migrations and seeding run side by side), then start them all."""
        with ThreadPool(len(self.hubs)) as pool:
            pool.map(lambda hub: hub.prepare(), list(self))
        for hub in self:
            hub.start()

    def stop(self, *, drop_databases: bool = True) -> None:
        """Stop every hub; keep their databases (for a look after a failure; the next start recreates them) unless
        `drop_databases`."""
        for hub in self:
            if drop_databases:
                hub.destroy()
            else:
                hub.stop()

    def logs(self) -> str:
        return "\n".join(hub.log_tail() for hub in self)


def redis_dbs_from_env(default: str = "11,12,13") -> list[int]:
    return [int(db) for db in os.environ.get("NOMOAT_FEDERATION_REDIS_DBS", default).split(",") if db.strip()]


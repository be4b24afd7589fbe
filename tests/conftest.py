"""Real services for the suite: a Celery worker process, an S3 server on loopback, headless Chromium.

The database is whatever DATABASE_URL says (PostgreSQL under `make test`, SQLite on the embedded
default); pytest-django creates the test database, and the worker process is pointed at it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_models", "tests.factories", "tests.hf_client"]

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from that
# thread are still synchronous, so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Tests make many users: PBKDF2 would spend seconds hashing their passwords on a 2-core machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def own_cache_namespace(settings) -> None:
    """Each test its own keys in the shared cache (the real backend: Redis or files). Test databases reuse ids, so
    a key left by another test or an earlier run (a download counted an hour ago) would leak into this one; a fresh
    prefix isolates it without flushing a Redis database the broker also uses."""
    settings.CACHES = {name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
                       for name, config in settings.CACHES.items()}


@pytest.fixture(autouse=True)
def generous_throttles(settings) -> None:
    """Tests that are not about throttling sign in, upload and build far faster than a person: every limit is raised
    out of their way. Throttling's own tests (tests/security/test_throttling.py) set the limits they cross."""
    settings.THROTTLE_RATES = {scope: "1000000/minute" for scope in settings.THROTTLE_RATES}
    settings.STACK_BUILDS_CONCURRENT_PER_USER = 1_000_000


@pytest.fixture(autouse=True)
def no_anonymous_read_cache(settings) -> None:
    """Tests change rows with `.update()` (no save signal) and read again at once: the anonymous read cache is off
    for them; tests/throughput/test_anonymous_cache.py turns it on."""
    settings.ANONYMOUS_CACHE_SECONDS = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.2,
               what: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy, which is returned; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _database_url(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess on the test database; restartable (to test dying mid-task)."""

    def __init__(self, env: dict[str, str], log_dir: Path, pool: str = "solo") -> None:
        self.env = env
        self.log_dir = log_dir
        self.pool = pool  # "solo" runs tasks in the worker itself; time limits need "prefork"
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self) -> None:
        self.log_path = self.log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        log = open(self.log_path, "w")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hub", "worker", "-Q", ",".join(QUEUES), "--pool", self.pool,
             "--concurrency", "1",
             "-l", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@localhost", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: "ready." in self.log_path.read_text() or self.proc.poll() is not None, timeout=120,
                   what="the Celery worker to be ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: the worker dies as if the machine lost it, mid-task."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def wait_idle(self, queued: Callable[[], int], timeout: float = 300) -> None:
        """Until nothing is queued and every task the worker received has finished (twice in a row, so a
        task enqueued by the one that just finished is seen)."""

        def idle() -> bool:
            log = self.log()
            received = set(RECEIVED_RE.findall(log))
            return queued() == 0 and received <= set(FINISHED_RE.findall(log))

        wait_until(lambda: idle() and (time.sleep(0.3) or idle()), timeout=timeout, interval=0.2,
                   what="the Celery worker to finish its tasks")


RECEIVED_RE = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
FINISHED_RE = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|failed|retry)")
QUEUES = ("uploads", "builds", "evals", "training", "federation")


def queued_messages() -> int:
    """Messages waiting in the broker's queues (Redis lists, or the filesystem transport's files)."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        return sum(client.llen(queue) for queue in QUEUES)
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    return sum(1 for queue in QUEUES for _ in folder.glob(f"*.{queue}.msg")) if folder.is_dir() else 0


@pytest.fixture
def celery_worker(celery_worker_process: WorkerProcess) -> Iterator[WorkerProcess]:
    """The session's worker; after the test it is left idle, so the test database is never flushed
    (TRUNCATE) while the worker still reads it (PostgreSQL resolves that as a deadlock)."""
    yield celery_worker_process
    if celery_worker_process.proc and celery_worker_process.proc.poll() is None:
        celery_worker_process.wait_idle(queued_messages)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    """A worker process consuming every queue, sharing the test database and blob store."""
    from django.conf import settings
    from django.db import connection

    from hub.celery import app

    with django_db_blocker.unblock():
        url = _database_url(connection.settings_dict)
    app.control.purge()  # tasks left by an earlier run must not reach this worker
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "NOMOAT_DATA_DIR": str(settings.DATA_DIR), "BLOB_STORE": settings.BLOB_STORE, "PYTHONUNBUFFERED": "1",
           # Short leases so a test can watch a dead worker's task being claimed again.
           "VALIDATION_LEASE_SECONDS": "4",
           # Every publication and stack build enqueues evaluations: small suites keep the shared worker quick.
           "EVAL_MAX_DOCS": "3", "EVAL_MAX_ITEMS": "40"}
    worker = WorkerProcess(env, tmp_path_factory.mktemp("worker"))
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def replace_worker(celery_worker: WorkerProcess, tmp_path_factory) -> Iterator[Callable[..., WorkerProcess]]:
    """Swap the session's worker for one with other settings or pool; the session's comes back after."""
    started: list[WorkerProcess] = []

    def replace(pool: str = "solo", **env: str) -> WorkerProcess:
        for worker in (celery_worker, *started):
            worker.stop()
        worker = WorkerProcess({**celery_worker.env, **env}, tmp_path_factory.mktemp("worker"), pool=pool)
        worker.start()
        started.append(worker)
        return worker

    yield replace
    for worker in started:
        worker.stop()
    if started:
        celery_worker.start()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server (moto's standalone server) on loopback; yields its endpoint URL."""
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert moto, "moto_server is missing: pip install 'moto[server]'"
    port = free_port()
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=30, what="the S3 server")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install chromium (make test does this)"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()

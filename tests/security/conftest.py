"""A real gunicorn process serving the hub as `make run` does (runhub's own arguments), on the test database."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT, _database_url, free_port, wait_until


@dataclass
class HubServer:
    url: str
    host: str
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_hub(transactional_db, settings, tmp_path) -> Iterator[Callable[..., HubServer]]:
    """Start `gunicorn hub.asgi` with runhub's arguments (one worker, so any worker a client can hold shows); stopped
    before the test database is flushed."""
    from django.db import connection

    from hub.catalog.management.commands.runhub import web_server_argv

    started: list[subprocess.Popen] = []

    def start(*, timeout: int = 30, **env: str) -> HubServer:
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        proc_env = {**os.environ, "DATABASE_URL": _database_url(connection.settings_dict),
                    "NOMOAT_DATA_DIR": str(settings.DATA_DIR), "BLOB_STORE": settings.BLOB_STORE,
                    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "PYTHONUNBUFFERED": "1", **env}
        with open(log, "w") as out:
            proc = subprocess.Popen(web_server_argv("127.0.0.1", str(port), workers="1", timeout=timeout),
                                    cwd=REPO_ROOT, env=proc_env, stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        server = HubServer(url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port, log=log)

        def answering() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{server.log_text()[-4000:]}")
            try:
                return requests.get(f"{server.url}/api/v1/users", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or still loading the hub
                return False

        wait_until(answering, timeout=60, what="gunicorn to answer")
        return server

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

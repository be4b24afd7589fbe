"""`make run`: migrate, seed, then run the web server and a Celery worker until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from hub.accounts.models import ApiToken, TokenScope, User
from hub.accounts.services import api_token_create, api_token_revoke
from hub.catalog.management.commands.seed_hub import DEMO_USERS

RUN_TOKEN_NAME = "make-run"  # noqa: S105 - a label


class Command(BaseCommand):
    help = "Run the hub on one machine: web server + Celery worker (all queues)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--skip-smollm2", action="store_true")

    def handle(self, *args, host: str, port: str, skip_smollm2: bool, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("seed_hub", skip_smollm2=skip_smollm2)
        demo = User.objects.get(username="demo")
        for old in ApiToken.objects.filter(user=demo, name=RUN_TOKEN_NAME, revoked_at__isnull=True):
            api_token_revoke(token=old)
        token = api_token_create(user=demo, name=RUN_TOKEN_NAME, scope=TokenScope.WRITE).raw

        children = [
            subprocess.Popen([sys.executable, "-m", "celery", "-A", "hub", "worker", "-Q", "uploads,builds,evals",
                              "--concurrency", os.environ.get("WORKER_CONCURRENCY", "1"), "-l", "INFO",
                              "-n", f"embedded@{host}",
                              # an embedded beat: lost work is re-enqueued every minute
                              "-B", "-s", str(settings.DATA_DIR / "celerybeat-schedule")]),
            subprocess.Popen([sys.executable, "-m", "gunicorn", "hub.wsgi", "-b", f"{host}:{port}",
                              "--workers", os.environ.get("WEB_WORKERS", "2"), "--threads", "4",
                              "--timeout", "300", "--access-logfile", "-"]),
        ]
        _, _, demo_default = DEMO_USERS["demo"]
        self.stdout.write(self.style.SUCCESS(
            f"\n  nomoat is running at http://{host}:{port}/\n"
            f"  demo login: demo / {os.environ.get('NOMOAT_DEMO_PASSWORD', demo_default)}\n"
            f"  API token (demo, write): {token}\n"
            f"  try: curl -H 'Authorization: Bearer {token}' http://{host}:{port}/api/v1/base-models\n"
            f"  data: {settings.DATA_DIR}   Ctrl-C stops everything.\n"
        ))
        stop = {"now": False}

        def request_stop(signum, frame) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stop["now"] and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for child in children:
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stop["now"]:
            sys.exit(f"a hub process exited with code {failed[0].returncode}")

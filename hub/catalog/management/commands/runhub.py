"""`make run`: migrate, seed, then run the hub's processes under a supervisor until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from hub.accounts.models import ApiToken, TokenScope, User
from hub.accounts.services import api_token_create, api_token_revoke
from hub.catalog.management.commands.seed_hub import DEMO_USERS, demo_password
from hub.supervisor import Child, CrashLoop, Supervisor

RUN_TOKEN_NAME = "make-run"  # noqa: S105 - a label


def web_server_argv(host: str, port: str, *, workers: str | None = None, timeout: int = 30) -> list[str]:
    """gunicorn serving the hub over ASGI. Its asgi worker reads headers and bodies on an event loop, so slow or
    stalled clients hold a coroutine, not a thread that runs views (a sync or gthread worker is held by each one:
    ten slowloris sockets stalled every other request). A body that sends nothing for --timeout seconds is cut off;
    --keep-alive bounds idle connections and, with hub/asgi_worker.py, the wait for a request's headers, the first
    one's included; header size and count are capped. Tests and bench/load.py start this."""
    return [sys.executable, "-m", "gunicorn", "hub.asgi:application",
            "--worker-class", "hub.asgi_worker.HeaderTimeoutWorker", "-b", f"{host}:{port}",
            "--workers", workers or os.environ.get("WEB_WORKERS", "2"), "--timeout", str(timeout), "--graceful-timeout", "30",
            "--asgi-lifespan", "off", "--keep-alive", "5", "--limit-request-line", "8190", "--limit-request-fields", "100",
            "--access-logfile", "-"]


def hub_processes(host: str, port: str) -> list[Child]:
    """The web server, a worker for uploads (validation never waits behind builds and evaluations),
    a worker for the heavy queues, one for training, and the beat that re-enqueues lost work every minute."""
    celery = [sys.executable, "-m", "celery", "-A", "hub"]
    concurrency = os.environ.get("WORKER_CONCURRENCY", "1")

    def worker(name: str, queues: str) -> Child:
        return Child(f"worker ({queues})", [*celery, "worker", "-Q", queues, "--concurrency", concurrency,
                                            "-l", "INFO", "-n", f"{name}@{host}"])

    return [
        Child("web server", web_server_argv(host, port)),
        worker("uploads", "uploads,federation"),
        worker("heavy", "builds,evals"),
        # Training holds its worker for minutes: on its own, stack builds and evaluations never wait behind it.
        worker("training", "training"),
        Child("beat", [*celery, "beat", "-l", "INFO", "-s", str(settings.DATA_DIR / "celerybeat-schedule")]),
    ]


class Command(BaseCommand):
    help = "Run the hub on one machine: web server, Celery workers and beat, supervised."

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

        supervisor = Supervisor(hub_processes(host, port),
                                log=lambda line: self.stderr.write(self.style.WARNING(f"runhub: {line}")))
        stop = {"now": False}

        def request_stop(signum, frame) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        supervisor.start_all()
        logins = "\n".join(f"  sign in as {role.label.lower()}: {name} / {demo_password(name)}"
                           for name, (role, _, _) in DEMO_USERS.items())
        self.stdout.write(self.style.SUCCESS(
            f"\n  nomoat is running at http://{host}:{port}/\n{logins}\n"
            f"  API token (demo, write): {token}\n"
            f"  try: curl -H 'Authorization: Bearer {token}' http://{host}:{port}/api/v1/base-models\n"
            f"  data: {settings.DATA_DIR}   Ctrl-C stops everything.\n"
        ))
        try:
            supervisor.run(lambda: stop["now"])
        except CrashLoop as exc:
            supervisor.stop_all()
            sys.exit(f"runhub: {exc}")
        self.stdout.write("stopping nomoat…")
        supervisor.stop_all()
        self.stdout.write("stopped.")

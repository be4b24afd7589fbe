"""The Celery app (Django's convention). Each app's tasks live in hub/<app>/tasks.py; services announce work
with a signal, and the app's tasks module enqueues it (`delay_on_commit`), so services never import tasks."""

import logging
import os
from pathlib import Path

from celery import Celery
from celery.contrib.django.task import DjangoTask
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

log = logging.getLogger(__name__)


class HubTask(DjangoTask):
    """Work enqueued after a commit is already recorded in its row: when the broker is unreachable at that moment,
    the request that recorded it still succeeds (no 500 that makes a client retry and record it twice), and the
    beat's requeue sweep of each app sends the work once the broker is back."""

    def delay_on_commit(self, *args, **kwargs) -> None:
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, *args, **kwargs) -> None:
        transaction.on_commit(lambda: self._send_or_leave_to_sweep(args, kwargs))

    def _send_or_leave_to_sweep(self, args: tuple, kwargs: dict) -> None:
        try:
            self.apply_async(*args, **kwargs)
        except Exception:
            log.warning("could not enqueue %s: the broker is unreachable; the requeue sweep sends it later",
                        self.name, exc_info=True)


app = Celery("hub", task_cls=HubTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# kombu's filesystem transport needs its folders to exist before the first message.
for folder in (app.conf.broker_transport_options or {}).values():
    if isinstance(folder, str):
        Path(folder).mkdir(parents=True, exist_ok=True)

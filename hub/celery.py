"""The Celery app (Django's convention). Each app's tasks live in hub/<app>/tasks.py; services announce work
with a signal, and the app's tasks module enqueues it (`delay_on_commit`), so services never import tasks."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# kombu's filesystem transport needs its folders to exist before the first message.
for folder in (app.conf.broker_transport_options or {}).values():
    if isinstance(folder, str):
        Path(folder).mkdir(parents=True, exist_ok=True)

"""The Celery app (Django's convention). Tasks live in workers/tasks.py; hub code enqueues by name."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")

# kombu's filesystem transport needs its folders to exist before the first message.
for folder in (app.conf.broker_transport_options or {}).values():
    if isinstance(folder, str):
        Path(folder).mkdir(parents=True, exist_ok=True)

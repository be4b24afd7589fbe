"""What every app's tasks module shares."""

from __future__ import annotations

import logging

from celery import Task
from celery.signals import worker_ready

log = logging.getLogger(__name__)


def run_when_a_worker_starts(task: Task) -> None:
    """Enqueue `task` whenever a worker comes up, so it picks up what a dead one left behind."""

    def enqueue(sender: object = None, **kwargs: object) -> None:
        try:
            task.delay()
        except Exception:  # a broker hiccup at start-up must not stop the worker
            log.exception("could not enqueue %s", task.name)

    worker_ready.connect(enqueue, weak=False, dispatch_uid=f"{task.name}.on_worker_start")

"""Enqueue Celery tasks by name: hub code never imports workers.tasks (arrows point one way)."""

from __future__ import annotations

from typing import Any


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> None:
    from hub.celery import app

    app.send_task(task_name, args=args, kwargs=kwargs)

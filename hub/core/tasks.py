"""What every app's tasks module shares."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready

from hub.core.outages import outage_of
from workers.engine.errors import EngineInputError, VerificationError

log = logging.getLogger(__name__)


def run_when_a_worker_starts(task: Task) -> None:
    """Enqueue `task` whenever a worker comes up, so it picks up what a dead one left behind."""

    def enqueue(sender: object = None, **kwargs: object) -> None:
        try:
            task.delay()
        except Exception:  # a broker hiccup at start-up must not stop the worker
            log.exception("could not enqueue %s", task.name)

    worker_ready.connect(enqueue, weak=False, dispatch_uid=f"{task.name}.on_worker_start")


@dataclass(frozen=True)
class TaskFailure:
    """How a task's work ended badly: the reason to record, and whether it is a bug of ours."""

    error: BaseException
    reason: str
    details: dict | None = None
    is_bug: bool = False


def task_failure(error: BaseException, *, time_limit_seconds: float | None = None) -> TaskFailure:
    """The one wording of a failure: the time limit, bad input (the engine's message names the field), a failed
    verification gate (with its figures), or anything else, which is a bug of ours."""
    if isinstance(error, SoftTimeLimitExceeded):
        return TaskFailure(error, f"timed out after {time_limit_seconds:g} s")
    if isinstance(error, EngineInputError):
        return TaskFailure(error, str(error))
    if isinstance(error, VerificationError):
        return TaskFailure(error, f"verification failed: {error}", details=error.details)
    return TaskFailure(error, f"internal error ({type(error).__name__}): {error}", is_bug=True)


@dataclass
class TaskOutcome:
    failure: TaskFailure | None = field(default=None)

    @property
    def failed(self) -> bool:
        return self.failure is not None


@contextmanager
def failures_recorded(record: Callable[[TaskFailure], object], *, name: str, time_limit_seconds: float | None = None,
                      reraise_bugs: bool = True) -> Iterator[TaskOutcome]:
    """Run a task's work; if it raises, record the failure (through the app's service, via `record`) and tell
    the caller by `outcome.failed`; an outage (hub/core/outages.py) is raised unrecorded. A bug is logged with its
    traceback and, with `reraise_bugs`, raised again after it is recorded, so that it ends visibly in the worker
    too, instead of being claimed again forever."""
    outcome = TaskOutcome()
    try:
        yield outcome
    except Exception as exc:
        if outage_of(exc) is not None:
            # The database or blob store is down: no verdict on the work. It stays claimed until its lease lapses,
            # then the beat's requeue sweep hands it to a worker again.
            log.warning("%s interrupted by an outage, left for the requeue sweep: %s", name, exc)
            raise
        outcome.failure = task_failure(exc, time_limit_seconds=time_limit_seconds)
        if outcome.failure.is_bug:
            log.exception("%s crashed", name)
        record(outcome.failure)
        if outcome.failure.is_bug and reraise_bugs:
            raise

"""Evaluations start on their own: when an adapter version is published and when a stack artifact is built.

Both signals are sent after the commit that made them true; a receiver only records runs and
enqueues them on the `evals` queue, so publishing and building never wait for an evaluation. A
failure to schedule is logged, never raised into the request that published.
"""

from __future__ import annotations

import logging

from hub.catalog.models import Version
from hub.evals.services import evals_schedule_stack, evals_schedule_version
from hub.stacks.models import StackBuild

log = logging.getLogger(__name__)


def on_version_published(sender: type, version: Version, **kwargs: object) -> None:
    try:
        evals_schedule_version(version=version)
    except Exception:
        log.exception("could not schedule the evaluations of %s", version)


def on_stack_ready(sender: type, build: StackBuild, **kwargs: object) -> None:
    try:
        evals_schedule_stack(build=build)
    except Exception:
        log.exception("could not schedule the evaluations of %s", build)

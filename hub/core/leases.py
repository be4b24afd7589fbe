"""Work claimed with a lease: the one mechanism behind "a worker that dies mid-task loses nothing".

A task claims its row with one conditional UPDATE (so duplicates of a task cannot both win),
holding a short lease that a heartbeat thread renews while the task runs; a row whose lease ran
out belongs to a dead worker and is claimed again by the next delivery of the task (the beat's
requeue runs every minute), so lost work comes back within about two leases, not one long one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger(__name__)


def lease_until(seconds: int) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def lease_expired() -> Q:
    return Q(lease_expires_at__lt=timezone.now())


def claim_with_lease(model: type[models.Model], pk: int, claimable: Q, *, lease_seconds: int, **updates) -> bool:
    """Atomically move row `pk` out of a claimable state, taking a lease; True when this caller won."""
    return bool(model.objects.filter(claimable, pk=pk).update(lease_expires_at=lease_until(lease_seconds), **updates))


def renew_lease(model: type[models.Model], pk: int, held: Q, *, lease_seconds: int) -> bool:
    """Extend the lease of row `pk` while it is still in a held state; False when the row was taken or finished."""
    return bool(model.objects.filter(held, pk=pk).update(lease_expires_at=lease_until(lease_seconds)))


def count_attempt() -> F:
    return F("attempts") + 1


@contextmanager
def lease_heartbeat(renew: Callable[[], object], *, lease_seconds: int, name: str) -> Iterator[None]:
    """Call `renew` every third of the lease while the block runs, on a thread of its own.

    The work inside may report no progress for minutes (a model loading, a quantization): the heartbeat is
    what tells the others this worker is alive. A worker that dies stops beating, and its lease lapses.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(max(lease_seconds / 3, 0.2)):
                try:
                    renew()
                except Exception:  # a missed beat is not fatal: the next one, or the lease, decides
                    log.exception("lease heartbeat %s failed", name)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

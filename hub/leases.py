"""Work claimed with a lease: the one mechanism behind "a worker that dies mid-task loses nothing".

A task claims its row with one conditional UPDATE (so duplicates of a task cannot both win),
holding a lease it extends while it makes progress; a row whose lease ran out belongs to a dead
worker and may be claimed again by the next delivery of the task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


def lease_until(seconds: int) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def lease_expired() -> Q:
    return Q(lease_expires_at__lt=timezone.now())


def claim_with_lease(model: type[models.Model], pk: int, claimable: Q, *, lease_seconds: int, **updates) -> bool:
    """Atomically move row `pk` out of a claimable state, taking a lease; True when this caller won."""
    return bool(model.objects.filter(claimable, pk=pk).update(lease_expires_at=lease_until(lease_seconds), **updates))


def count_attempt() -> F:
    return F("attempts") + 1

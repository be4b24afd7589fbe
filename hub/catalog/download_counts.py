"""Download counters buffered in Redis, so that a download is not a write to a hot row.

A counted download (hub/catalog/downloads.py says which count) adds one to a Redis hash per kind of item (`version`,
`stack`), field = the item's id; a beat task per kind (DOWNLOAD_COUNT_FLUSH_SECONDS) folds the buffered counts into
the rows, so the figures pages and the API show lag by up to that interval. A flush seals the hash under a batch name
of its own (a Lua script: rename and list it, atomically; downloads go on counting in a new hash), then folds each
listed batch in a transaction that also records the batch's name in DownloadFlush (unique): a flush that runs at the
same time, or again after a worker died between its commit and the batch's deletion, finds the name taken and folds
nothing, while a batch sealed by a worker that died before folding it is folded by the next flush. No count is lost,
none counted twice.

Without Redis (the embedded default's cache is files, whose `incr` is a read and a write, not atomic), and while Redis
cannot be reached (hub/core/outages.py), a download updates its rows directly, as it did before buffering.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.catalog.models import DownloadFlush
from hub.core.outages import outage_of

log = logging.getLogger(__name__)

Apply = Callable[..., None]  # a service called with counts={item id: downloads}: adds them to the rows
REDIS_TIMEOUT_SECONDS = 2  # an unresponsive Redis falls back to the row update instead of holding the worker
# A flush folds what it read within its task, seconds; a batch name stays recorded far longer than any flush lasts.
FLUSH_RECORD_DAYS = 1
SEAL = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('rename', KEYS[1], KEYS[3])
  redis.call('sadd', KEYS[2], KEYS[3])
end
return redis.call('smembers', KEYS[2])
"""


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _redis() -> redis.Redis | None:
    """The shared cache's Redis, or None when the cache is not Redis."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    return _client(config["LOCATION"])


def _pending(kind: str) -> str:
    # Under the cache's key prefix: tests (and hubs sharing a Redis) each count under their own.
    return cache.make_key(f"downloads:{kind}")


def count_download(kind: str, item_id: int, *, apply: Apply) -> None:
    """One download of item `item_id` of `kind`: buffered in Redis, else (no Redis, or an outage) `apply`-ed now."""
    client = _redis()
    if client is not None:
        try:
            client.hincrby(_pending(kind), str(item_id), 1)
            return
        except Exception as exc:
            if outage_of(exc) is None:
                raise
            log.warning("the shared cache cannot be reached (%s): a download of %s:%s is counted in its row", exc,
                        kind, item_id)
    apply(counts={item_id: 1})


def flush_downloads(kind: str, *, apply: Apply) -> int:
    """Fold the buffered downloads of `kind` into the rows (see the module's notes); how many were folded."""
    client = _redis()
    if client is None:
        return 0
    pending = _pending(kind)
    batches = client.eval(SEAL, 3, pending, f"{pending}:batches", f"{pending}:{uuid.uuid4().hex}")
    folded = 0
    for batch in sorted(name.decode() for name in batches):
        counts = {int(item): int(n) for item, n in client.hgetall(batch).items()}
        if counts:
            try:
                with transaction.atomic():
                    DownloadFlush.objects.create(batch=batch)
                    apply(counts=counts)
                folded += sum(counts.values())
            except IntegrityError:
                log.info("downloads batch %s was folded by another flush", batch)
        client.delete(batch)
        client.srem(f"{pending}:batches", batch)
    DownloadFlush.objects.filter(created_at__lt=timezone.now() - timedelta(days=FLUSH_RECORD_DAYS)).delete()
    return folded

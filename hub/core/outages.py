"""What counts as an outage: something the hub depends on cannot be reached, so a request answers 503 with
Retry-After instead of 500, and a task leaves its work for the requeue sweep instead of recording a failure.

The database: Django's OperationalError and InterfaceError (refused or dropped connections, a server shutting
down) from connecting or mid-request. Each request opens its own connection (CONN_MAX_AGE 0, health checks on), so
the first request after PostgreSQL is back succeeds: recovery needs no restart. Every write runs in a transaction,
so a request cut off by an outage leaves nothing half-recorded. The shared cache (Redis in production: throttles
count there, before anything is written): redis' ConnectionError and TimeoutError. The anonymous read cache and
the anonymous read limit do not count: they let the request through without the cache (hub/core/anoncache.py,
hub/core/throttling.py). The blob store raises ServiceUnavailable itself
(hub/catalog/blobstore.py maps its connection errors and timeouts).
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub.core.errors import ServiceUnavailable


def outage_of(exc: BaseException) -> ServiceUnavailable | None:
    """The ServiceUnavailable that `exc` amounts to, or None when it is not an outage."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, OperationalError | InterfaceError):
        wait = settings.OUTAGE_RETRY_AFTER_SECONDS
        return ServiceUnavailable(f"the database cannot be reached right now ({type(exc).__name__}); nothing of this "
                                  f"request was recorded: send it again in {wait} s", code="database_unavailable",
                                  retry_after=wait)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        wait = settings.OUTAGE_RETRY_AFTER_SECONDS
        return ServiceUnavailable(f"the hub's shared cache cannot be reached right now ({type(exc).__name__}); "
                                  f"nothing of this request was recorded: send it again in {wait} s",
                                  code="cache_unavailable", retry_after=wait)
    return None

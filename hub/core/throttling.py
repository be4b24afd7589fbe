"""Rate limits backed by the shared cache (Redis in production, so every web process counts together).

A limit is a `Rate` ("10/minute") per scope, read from `settings.THROTTLE_RATES`; `rate_check` counts one hit for a
key (a user, an address) in a fixed window with the cache's atomic `add` + `incr`, and past the limit refuses with
`Throttled`: a ServiceError answered 429 with `Retry-After` (the seconds until the window turns) by the API's
handler and the pages' middleware alike. When the cache cannot be reached, a limit that guards against guessing or
writes fails closed (the request answers 503, hub/core/outages.py); the anonymous read limit fails open, so that
the catalog and its downloads stay up through a Redis outage, as the pages and the read cache do. Redis counts atomically; the embedded default's file cache does not (its
`incr` reads and writes), so there concurrent hits may be undercounted a little. `ApiThrottle` applies the per-view limits of the REST API (uploads, upload
sessions, anonymous reads) from one table, so no view carries throttle code of its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from hub.core.errors import ServiceError
from hub.core.outages import outage_of
from hub.core.rates import Rate

log = logging.getLogger(__name__)


class Throttled(ServiceError):
    code = "throttled"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


def client_address(request: HttpRequest) -> str:
    """The client's IP address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front of the hub. Each
    of them appends the address it was reached from to X-Forwarded-For, so the client is the entry the outermost
    one added; anything further left came from the client and is not trusted."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def rate_of(scope: str) -> Rate:
    """The scope's limit; a test or a shell may set it as text ("3/minute")."""
    rate = settings.THROTTLE_RATES[scope]
    return rate if isinstance(rate, Rate) else Rate.parse(rate, name=scope)


def rate_check(scope: str, key: str, *, what: str, fail_open: bool = False) -> None:
    """Count one hit of `key` against the scope's limit; raise Throttled once past it. `what` names the limit for
    people ("sign-in attempts for this account"). `fail_open`: when the cache cannot be reached, let the request
    through uncounted instead of answering 503."""
    rate = rate_of(scope)
    now = time.time()
    window = int(now // rate.seconds)
    # Hashed: fixed-length keys whatever a client sent, and no addresses or names kept in the cache.
    digest = hashlib.sha256(f"{scope}|{key}".encode()).hexdigest()
    cache_key = f"throttle:{scope}:{digest}:{window}"
    try:
        hits = _count_hit(cache_key, timeout=rate.seconds + 1)
    except Exception as exc:
        if not (fail_open and outage_of(exc)):
            raise
        log.warning("%s not counted, the cache is unreachable: %s", scope, exc)
        return
    if hits > rate.count:
        retry_after = max(1, math.ceil((window + 1) * rate.seconds - now))
        raise Throttled(f"too many {what}: at most {rate.text}; try again in {retry_after} s",
                        retry_after=retry_after)


def _count_hit(cache_key: str, *, timeout: int) -> int:
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:  # evicted between add and incr: this is the window's first hit
        cache.add(cache_key, 1, timeout=timeout)
        return 1


# REST API limits by route name (the `api` namespace) and method: (scope, what it counts).
API_LIMITS: dict[tuple[str, str], tuple[str, str]] = {
    ("adapter-versions", "POST"): ("uploads_per_user", "uploads"),
    ("dataset-versions", "POST"): ("uploads_per_user", "uploads"),
    ("upload-sessions", "POST"): ("upload_sessions_per_user", "upload sessions created"),
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiThrottle(BaseThrottle):
    """DRF's hook (DEFAULT_THROTTLE_CLASSES): the API_LIMITS of the route per user, and anonymous reads per
    address. Refusals raise Throttled, so the answer carries the limit's name and Retry-After."""

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            if request.method in SAFE_METHODS:
                rate_check("anonymous_reads_per_address", client_address(request), fail_open=True,
                           what="anonymous requests from this address (sign in or send a token for more)")
            return True
        match = getattr(request, "resolver_match", None)
        limit = API_LIMITS.get((match.url_name if match else "", request.method))
        if limit is not None:
            scope, what = limit
            rate_check(scope, f"user:{user.pk}", what=what)
        return True

"""A shared cache of anonymous catalog reads: what every anonymous caller sees is computed once per change.

Only requests that carry no credentials (no Authorization header, no session cookie) to the read views listed in
ANONYMOUS_CACHE_VIEWS are answered from the cache, and only 200 answers that set no cookie are stored: an anonymous
caller sees published items only, so nothing private can be stored, and a signed-in caller never reads a stored
answer. Every stored answer is keyed by a generation number that any change to the catalog's rows bumps
(`anonymous_reads_changed`, connected by the catalog to its models' save and delete signals, in web processes and
workers alike), so a takedown or a new version is seen by the next request; ANONYMOUS_CACHE_SECONDS bounds the rest
(download counters).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

GENERATION_KEY = "anonymous-reads:generation"
HIT_HEADER = "X-Anonymous-Cache"


def anonymous_reads_changed(**signal_kwargs) -> None:
    """A catalog row changed: every stored anonymous answer is stale from now on."""
    if not cache.add(GENERATION_KEY, 1, timeout=None):
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # evicted in between
            cache.add(GENERATION_KEY, 1, timeout=None)


def _cacheable_view(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return view_class is not None and f"{view_class.__module__}.{view_class.__qualname__}" in settings.ANONYMOUS_CACHE_VIEWS


def _anonymous(request: HttpRequest) -> bool:
    return "HTTP_AUTHORIZATION" not in request.META and settings.SESSION_COOKIE_NAME not in request.COOKIES


class AnonymousReadCacheMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        seconds = settings.ANONYMOUS_CACHE_SECONDS
        if (seconds <= 0 or request.method not in {"GET", "HEAD"} or not _anonymous(request)
                or not _cacheable_view(request)):
            return self.get_response(request)
        generation = cache.get(GENERATION_KEY, 0)
        varies = "|".join(request.META.get(h, "") for h in ("HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING"))
        digest = hashlib.sha256(f"{request.method}|{request.get_full_path()}|{varies}".encode()).hexdigest()
        key = f"anonymous-reads:{generation}:{digest}"
        stored = cache.get(key)
        if stored is not None:
            status, headers, body = stored
            response = HttpResponse(body, status=status)
            for name, value in headers:
                response[name] = value
            response[HIT_HEADER] = "hit"
            return response
        response = self.get_response(request)
        if response.status_code == 200 and not response.streaming and not response.cookies:
            headers = [(k, v) for k, v in response.items() if k.lower() != "content-security-policy"]
            cache.set(key, (response.status_code, headers, response.content), timeout=seconds)
            response[HIT_HEADER] = "miss"
        return response

"""A shared cache of anonymous catalog reads: what every anonymous caller sees is computed once per change.

Only requests that carry no credentials (no Authorization header, no session cookie) to the read views listed in
ANONYMOUS_CACHE_VIEWS are answered from the cache, and only 200 answers that are no page and set no cookie are stored: an
anonymous caller sees published items only, so nothing private can be stored, and a signed-in caller never reads a
stored answer. A view marks an answer that must reach it every time (a download that counts) with `never_store`,
and a streamed answer whose body it already holds in memory (a small file) with `with_body`, so that it may be kept.
Every stored answer carries the generation number that any change to the catalog's rows bumps
(`anonymous_reads_changed`, connected by the catalog to its models' save and delete signals, in web processes and
workers alike), so a takedown or a new version is seen by the next request; ANONYMOUS_CACHE_SECONDS bounds the rest
(download counters): past it, one request recomputes an answer (it holds a refresh mark) while the others are still
answered with it, so a popular read does not turn into a stampede of misses every ANONYMOUS_CACHE_SECONDS.

Two readers, one writer. `AnonymousReadCacheMiddleware`, the first of MIDDLEWARE, stores the answer with every
header the rest of the chain added (security headers, the policy, the ETag) and answers hits under WSGI and in
tests. `AnonymousReadCacheApp` wraps the ASGI application (hub/asgi.py) and answers a hit before Django's handler
runs at all: Django's ASGI handler starts a thread per request for its sync middleware and signals, which costs
more than the hit itself. Both answer If-None-Match with 304 from the stored ETag.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, cache, caches
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import Resolver404, resolve

GENERATION_KEY = "anonymous-reads:generation"
HIT_HEADER = "X-Anonymous-Cache"
# What a 304 keeps of the stored answer (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS = frozenset({"etag", "vary", "cache-control", "content-location", "expires", "last-modified"})

NEVER_STORE = "_anonymous_cache_never_store"
BODY = "_anonymous_cache_body"

Stored = tuple[int, list[tuple[str, str]], bytes]
UNREACHABLE = -1  # the generation when the cache could not be read: nothing is stored then
REFRESHING = ":refreshing"  # suffix of the mark one request holds while it recomputes an answer past its time
REFRESH_SECONDS = 10  # how long that mark holds if its request dies (then another request recomputes)
STALE_SECONDS = 60  # how long past its time an answer is kept, to answer others while one request recomputes it

log = logging.getLogger(__name__)


def anonymous_reads_changed(**signal_kwargs) -> None:
    """A catalog row changed: every stored anonymous answer is stale from now on. The cache is only a shortcut: when
    it is unreachable the write that changed the row goes on (it runs inside that write's transaction), and what the
    cache still holds expires within ANONYMOUS_CACHE_SECONDS."""
    try:
        if not cache.add(GENERATION_KEY, 1, timeout=None):
            try:
                cache.incr(GENERATION_KEY)
            except ValueError:  # evicted in between
                cache.add(GENERATION_KEY, 1, timeout=None)
    except Exception:
        log.warning("the anonymous read cache is unreachable: its answers go stale for up to %s s",
                    settings.ANONYMOUS_CACHE_SECONDS, exc_info=True)


def never_store(response: HttpResponseBase) -> HttpResponseBase:
    """Keep this answer out of the anonymous cache: the view must see every such request."""
    setattr(response, NEVER_STORE, True)
    return response


def with_body(response: StreamingHttpResponse, body: bytes) -> StreamingHttpResponse:
    """A streamed answer of `body`, which is already in memory: the cache may keep it (the stream itself is not
    read here: under ASGI it is an asynchronous iterator)."""
    setattr(response, BODY, body)
    return response


def _key(method: str, headers: Mapping[str, str], scheme: str, path: str, query: str) -> str:
    """The cache key of a request, from what both readers see alike: the lower-case header names of `headers`."""
    proxy_header, secure_value = settings.SECURE_PROXY_SSL_HEADER or (None, None)
    if proxy_header:  # the scheme as Django's request.scheme derives it behind a proxy
        forwarded = headers.get(proxy_header.removeprefix("HTTP_").replace("_", "-").lower())
        if forwarded is not None:
            scheme = "https" if forwarded.split(",", 1)[0].strip() == secure_value else "http"
    # The host is part of it: an answer stored for an allowed host is never served to a request for another.
    varies = "|".join(headers.get(h, "") for h in ("host", "accept", "accept-encoding"))
    digest = hashlib.sha256(f"{method}|{scheme}|{varies}|{path}?{query}".encode()).hexdigest()
    return f"anonymous-reads:{digest}"


def _fetch(store: BaseCache, key: str) -> tuple[int, Stored | None, bool]:
    """The current generation; the answer stored under `key` if it was computed in that generation; and whether
    that answer is due: past ANONYMOUS_CACHE_SECONDS with no request recomputing it yet. One round trip (a Redis
    MGET): a hit blocks the event loop for it. An unreachable cache is a miss that is not stored."""
    try:
        found = store.get_many([GENERATION_KEY, key, key + REFRESHING])
    except Exception:
        log.warning("the anonymous read cache is unreachable: answering without it", exc_info=True)
        return UNREACHABLE, None, False
    generation = found.get(GENERATION_KEY, 0)
    entry = found.get(key)
    if not (isinstance(entry, tuple) and len(entry) == 3 and entry[0] == generation):  # none, older, other format
        return generation, None, False
    _, stored, fresh_until = entry
    return generation, stored, time.time() >= fresh_until and key + REFRESHING not in found


def _anonymous(headers: Mapping[str, str]) -> bool:
    if "authorization" in headers:
        return False
    cookies = (part.split("=", 1)[0].strip() for part in headers.get("cookie", "").split(";"))
    return settings.SESSION_COOKIE_NAME not in cookies


def _askable(method: str, headers: Mapping[str, str]) -> bool:
    """Whether the cache may answer at all: an anonymous GET or HEAD of the whole body (a Range is the view's)."""
    return (settings.ANONYMOUS_CACHE_SECONDS > 0 and method in {"GET", "HEAD"} and "range" not in headers
            and _anonymous(headers))


def _not_modified(stored: Stored, if_none_match: str) -> Stored | None:
    """A 304 when If-None-Match names the stored ETag (weak comparison, as RFC 9110 asks for GET and HEAD)."""
    status, headers, _ = stored
    etag = next((v for k, v in headers if k.lower() == "etag"), None)
    if not if_none_match or etag is None:
        return None
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    if "*" not in wanted and etag.removeprefix("W/") not in wanted:
        return None
    return 304, [(k, v) for k, v in headers if k.lower() in NOT_MODIFIED_HEADERS], b""


def _body(response: HttpResponseBase) -> bytes | None:
    return getattr(response, BODY, None) if response.streaming else response.content


def _storable(response: HttpResponseBase) -> bool:
    return (response.status_code == 200 and not response.cookies and not getattr(response, NEVER_STORE, False)
            and _body(response) is not None
            # No pages: a page's policy carries a per-request nonce that its body repeats.
            and not response.get("Content-Type", "").startswith("text/html"))


def _cacheable_view(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return view_class is not None and f"{view_class.__module__}.{view_class.__qualname__}" in settings.ANONYMOUS_CACHE_VIEWS


class AnonymousReadCacheMiddleware:
    """First in MIDDLEWARE, so what it stores has every header the chain adds."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if not _askable(request.method, headers) or not _cacheable_view(request):
            return self.get_response(request)
        key = _key(request.method, headers, request._get_scheme(), request.path, request.META.get("QUERY_STRING", ""))
        # The generation before the view reads anything: a change made meanwhile leaves what it answers stale.
        generation, stored, due = _fetch(cache, key)
        # An answer past its time is recomputed by one request (the one that takes the refresh mark) while the
        # others are answered with it: no stampede of misses every ANONYMOUS_CACHE_SECONDS. An answer of an older
        # generation (a takedown, a new version) is never served.
        refreshing = due and cache.add(key + REFRESHING, 1, timeout=REFRESH_SECONDS)
        if stored is not None and not refreshing:
            status, stored_headers, body = _not_modified(stored, headers.get("if-none-match", "")) or stored
            response = HttpResponse(body, status=status)
            for name, value in stored_headers:
                response[name] = value
            if status == 304:
                del response["Content-Type"]
            response[HIT_HEADER] = "hit"
            return response
        try:
            response = self.get_response(request)
            if generation != UNREACHABLE and _storable(response):
                fresh_until = time.time() + settings.ANONYMOUS_CACHE_SECONDS
                cache.set(key, (generation, (200, list(response.items()), _body(response)), fresh_until),
                          timeout=settings.ANONYMOUS_CACHE_SECONDS + STALE_SECONDS)
                response[HIT_HEADER] = "miss"
        finally:
            if refreshing:
                cache.delete(key + REFRESHING)
        return response


# The ASGI reader's own cache object, one per process: Django's `cache` is one per asyncio task, that is per request
# (a fresh Redis connection pool each time). Rebuilt when a test changes CACHES.
_process_store: BaseCache | None = None


def _store() -> BaseCache:
    global _process_store
    if _process_store is None:
        _process_store = caches.create_connection(DEFAULT_CACHE_ALIAS)
    return _process_store


def _forget_store(*, setting: str, **kwargs: Any) -> None:
    global _process_store
    if setting == "CACHES":
        _process_store = None


setting_changed.connect(_forget_store, dispatch_uid="anonymous-reads-store")

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class AnonymousReadCacheApp:
    """ASGI: answer a stored anonymous read on the event loop, before Django's handler; pass the rest to `app`.

    The lookup is one small synchronous cache read (two files, or one loopback Redis round trip), made on the loop
    on purpose: a thread hop would cost more than it does. A miss goes to Django, whose middleware stores the answer.
    """

    def __init__(self, app: Callable[[dict, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        stored = self._lookup(scope) if scope["type"] == "http" else None
        if stored is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = stored
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_encoded(headers), (HIT_HEADER.lower().encode(), b"hit")]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _lookup(self, scope: dict) -> Stored | None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if not _askable(scope["method"], headers):
            return None
        _, stored, due = _fetch(_store(), _key(scope["method"], headers, scope.get("scheme", "http"),
                                               scope["path"], scope.get("query_string", b"").decode("latin-1")))
        if stored is None or due:  # Django's middleware recomputes it (or answers with it while another does)
            return None
        return _not_modified(stored, headers.get("if-none-match", "")) or stored


def _encoded(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

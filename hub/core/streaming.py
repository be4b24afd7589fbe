"""Streamed response bodies that stay streamed under ASGI.

Under ASGI, Django reads a synchronous iterator whole into memory before it sends the first byte
(StreamingHttpResponse.__aiter__ consumes it with `list`), which for a multi-gigabyte file is the machine's memory.
`response_body` hands ASGI an asynchronous iterator that pulls one chunk at a time on a worker thread, and WSGI the
iterator itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def response_body(request: HttpRequest, chunks: Iterable[bytes]) -> Iterable[bytes] | AsyncIterator[bytes]:
    return _pulled_on_a_thread(iter(chunks)) if isinstance(request, ASGIRequest) else chunks


async def _pulled_on_a_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    done = object()
    pull = sync_to_async(next, thread_sensitive=False)
    try:
        while (chunk := await pull(chunks, done)) is not done:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()

"""Serve a blob over HTTP with the semantics download clients rely on.

Single byte ranges (206), 416 with `Content-Range: bytes */size` when unsatisfiable, ETag =
the sha256 (so a resumed download can be checked), If-None-Match / If-Range, HEAD without a
body, and a redirect when the blob store can presign a URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from hub.catalog.blobstore import get_blob_store

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end) inclusive; None to serve the whole file; "unsatisfiable" for a 416."""
    match = RANGE_RE.match(header.strip())
    if not match:
        return None  # multi-range or malformed: RFC 9110 lets a server ignore it
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


def serve_blob(
    request: HttpRequest,
    *,
    sha256: str,
    size: int,
    filename: str,
    extra_headers: dict[str, str] | None = None,
    on_download: Callable[[], None] | None = None,
) -> HttpResponse:
    """Answer GET/HEAD for one stored file. `on_download` runs once per real download (a GET from byte 0)."""
    etag = f'"{sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Sha256": sha256,
        **(extra_headers or {}),
    }
    if request.headers.get("If-None-Match") in {etag, "*"}:
        return _with_headers(HttpResponse(status=304), headers)

    byte_range: tuple[int, int] | None | str = None
    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range", etag) == etag:
        byte_range = parse_range(range_header, size)
    if byte_range == "unsatisfiable":
        return _with_headers(HttpResponse(status=416), {**headers, "Content-Range": f"bytes */{size}"})

    start, end = byte_range if isinstance(byte_range, tuple) else (0, size - 1)
    if request.method == "GET" and on_download is not None and start == 0:
        on_download()

    store = get_blob_store()
    url = store.download_url(sha256, filename) if request.method == "GET" else None
    if url:
        return _with_headers(HttpResponseRedirect(url), {**headers, "Content-Length": "0"})

    length = max(end - start + 1, 0)
    if request.method == "HEAD":
        response = HttpResponse(status=206 if isinstance(byte_range, tuple) else 200)
    else:
        body = store.read_range(sha256, start, end) if length else iter(())
        response = StreamingHttpResponse(body, status=206 if isinstance(byte_range, tuple) else 200)
    response["Content-Type"] = "application/octet-stream"
    response["Content-Length"] = str(length)
    if isinstance(byte_range, tuple):
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _with_headers(response, headers)


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for key, value in headers.items():
        response[key] = value
    return response

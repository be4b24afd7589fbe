"""Serve a blob over HTTP with the semantics download clients rely on, and say what counts as a download.

Single byte ranges (206), 416 with `Content-Range: bytes */size` when unsatisfiable, ETag =
the sha256 (so a resumed download can be checked), If-None-Match / If-Range, HEAD without a
body, and a redirect when the blob store can presign a URL. With the file store and
BLOB_ACCEL_REDIRECT set, a GET answers `X-Accel-Redirect` and no body: the proxy sends the bytes.

A download is a GET from byte 0, counted once per client (the signed-in user, else the IP address)
and item per DOWNLOAD_DEDUP_SECONDS, so repeated requests cannot inflate `ordering=downloads`. The
request only adds a key to the shared cache; the count is buffered after the response is sent and reaches the rows
with the next flush (hub/catalog/download_counts.py). While the shared cache is down a download is still served and
counted, without deduplication.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from hub.catalog.blobstore import FileBlobStore, get_blob_store
from hub.catalog.models import RepoKind, Version, VersionFile
from hub.catalog.services import version_record_download
from hub.core.anoncache import never_store, with_body
from hub.core.outages import outage_of
from hub.core.streaming import response_body
from hub.core.throttling import client_address
from workers.engine.datasets import DATA_SUFFIXES

log = logging.getLogger(__name__)

RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
PAST_ANY_END = 10**18  # bytes: more than any file holds
SMALL_FILE_BYTES = 64 * 1024


def _position(digits: str) -> int:
    """A byte position of a Range header; one too long for `int()` (over 4300 digits) is past the end of any file."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else PAST_ANY_END


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end) inclusive; None to serve the whole file; "unsatisfiable" for a 416."""
    match = RANGE_RE.match(header.strip())
    if not match:
        return None  # multi-range or malformed: RFC 9110 lets a server ignore it
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = _position(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = _position(first)
    end = min(_position(last), size - 1) if last else size - 1
    if start >= size or (last and _position(last) < start):
        return "unsatisfiable"
    return start, end


@dataclass(frozen=True)
class Download:
    """What fetching a file counts as: a download of the item named `key` ("version:12"); `record` adds one."""

    key: str
    record: Callable[[], None]


def _first_in_window(request: HttpRequest, download: Download) -> bool:
    """Whether this client's download of this item is its first in the window (one atomic `add` to the shared
    cache, no database write)."""
    window = settings.DOWNLOAD_DEDUP_SECONDS
    if window <= 0:
        return True
    user = getattr(request, "user", None)
    client = f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{client_address(request)}"
    # Hashed: a fixed-length key whatever the header held, and no addresses stored in the cache.
    digest = hashlib.sha256(f"{download.key}|{client}".encode()).hexdigest()
    try:
        return cache.add(f"download:{digest}", 1, timeout=window)
    except Exception as exc:
        if outage_of(exc) is None:
            raise
        # The shared cache is down: the download is still served, and counted (a repeat may count again meanwhile).
        return True


def _record_after_response(response: HttpResponse, download: Download) -> None:
    """Count the download once the response has been sent (Django runs a response's closers then), off the hot
    path. A closer's exception would be swallowed; log it instead."""

    def record() -> None:
        try:
            download.record()
        except Exception:
            log.exception("could not count a download of %s", download.key)

    response._resource_closers.append(record)


def serve_blob(
    request: HttpRequest,
    *,
    sha256: str,
    size: int,
    filename: str,
    extra_headers: dict[str, str] | None = None,
    download: Download | None = None,
) -> HttpResponse:
    """Answer GET/HEAD for one stored file. A GET from byte 0 counts as a `download` (see the module's notes)."""
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
    counts = (request.method == "GET" and download is not None and start == 0
              and _first_in_window(request, download))

    store = get_blob_store()
    url = store.download_url(sha256, filename) if request.method == "GET" else None
    if url:
        response = _with_headers(HttpResponseRedirect(url), {**headers, "Content-Length": "0"})
    elif request.method == "GET" and settings.BLOB_ACCEL_REDIRECT and isinstance(store, FileBlobStore):
        response = _accel_redirect(store, sha256, headers)
    else:
        response = _served(request, store, sha256, byte_range, start, end, size, headers)
    if counts:
        _record_after_response(response, download)
    if download is not None and request.method == "GET":
        never_store(response)  # every GET of a file that counts must reach the counter
    return response


def _accel_redirect(store: FileBlobStore, sha256: str, headers: dict[str, str]) -> HttpResponse:
    """Hand the bytes to the proxy: it sends the file at BLOB_ACCEL_REDIRECT + its path in the store, Range and
    all (so this answers 200 whatever the Range); the body here is empty."""
    response = HttpResponse(status=200, content_type="application/octet-stream")
    response["X-Accel-Redirect"] = settings.BLOB_ACCEL_REDIRECT + store.local_path(sha256).relative_to(
        store.root).as_posix()
    return _with_headers(response, headers)


def _served(request: HttpRequest, store, sha256: str, byte_range: tuple[int, int] | None, start: int, end: int,
            size: int, headers: dict[str, str]) -> HttpResponse:
    """The bytes [start, end], streamed from this process; a small whole file is read at once, so that the anonymous
    read cache may keep it (cards, configs)."""
    length = max(end - start + 1, 0)
    status = 206 if isinstance(byte_range, tuple) else 200
    if request.method == "HEAD":
        response = HttpResponse(status=status)
    elif status == 200 and size <= SMALL_FILE_BYTES:
        data = b"".join(store.read_range(sha256, 0, size - 1)) if size else b""
        response = with_body(StreamingHttpResponse(response_body(request, [data]), status=200), data)
    else:
        body = response_body(request, store.read_range(sha256, start, end) if length else iter(()))
        response = StreamingHttpResponse(body, status=status)
    response["Content-Type"] = "application/octet-stream"
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _with_headers(response, headers)


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for key, value in headers.items():
        response[key] = value
    return response


def primary_file(version: Version) -> str:
    """The file whose download counts as a download of the version (its weights, or its first data file)."""
    paths = [f.path for f in version.files.all()]
    if version.repository.kind == RepoKind.ADAPTER:
        return "adapter_model.safetensors"
    data = sorted(p for p in paths if p.lower().endswith(DATA_SUFFIXES))
    return data[0] if data else ""


def serve_version_file(request: HttpRequest, version: Version, file: VersionFile) -> HttpResponse:
    """Download one file of a version: the API, the pages and the HF-compatible routes all serve it so."""
    download = (Download(key=f"version:{version.pk}", record=lambda: version_record_download(version=version))
                if file.path == primary_file(version) else None)
    return serve_blob(request, sha256=file.blob.sha256, size=file.blob.size, filename=file.path.rsplit("/", 1)[-1],
                      download=download)


def serve_listed_file(version: Version, path: str) -> HttpResponse:
    """A file of a version listed from another hub (held at its origin): a redirect to where this hub downloads it
    from (hub.federation's route for it redirects to the origin, or fetches it on demand), with the ETag its sha256
    will have."""
    entry = next((f for f in version.origin.listed_files if f.get("path") == path), None)
    if entry is None:
        raise Http404(f"{path} is not a file of {version}")
    return _with_headers(HttpResponseRedirect(entry["url"]), {"ETag": f'"{entry["sha256"]}"'})

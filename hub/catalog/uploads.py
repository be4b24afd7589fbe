"""Upload services: whole files (multipart or one archive) and resumable chunked sessions.

Every upload is stored in the blob store before anything else happens; then a version is
recorded and validation enqueued. Limits are checked while streaming, never after buffering.
Chunked sessions are capped per user (count and declared bytes) and expire when idle, `.part` file
and all (UPLOAD_SESSIONS_PER_USER, UPLOAD_SESSION_BYTES_PER_USER, UPLOAD_SESSION_TTL_SECONDS).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from hub.accounts.models import User
from hub.catalog.blobstore import BlobIntegrityError
from hub.catalog.models import BaseModel, Blob, UploadSession, Version
from hub.catalog.services import (
    blob_put_file,
    blob_put_stream,
    repository_get_or_create,
    repository_set_summary,
    version_create,
)
from hub.core.errors import ServiceError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,200}$")


class UploadError(ServiceError):
    """A refused upload: `code` is stable for clients, the message names the file and the limit."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


@dataclass(frozen=True)
class IncomingFile:
    path: str
    stream: BinaryIO
    size: int


def check_upload_path(path: str) -> str:
    """Relative POSIX paths of safe names only: no absolute paths, no '..', no hidden tricks."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(not SAFE_NAME.match(part) or part in {".", ".."} for part in parts):
        raise UploadError("bad_filename", f"{path!r}: file names may use letters, digits, '.', '_', '-' and spaces, "
                                          "in relative folders without '..'")
    return "/".join(parts)


def check_upload_sizes(files: Iterable[tuple[str, int]]) -> None:
    """The hub's limits on an upload's files, {path, size} (a mirrored version's too: hub.federation)."""
    files = list(files)
    if not files:
        raise UploadError("no_files", "no files were uploaded")
    if len(files) > settings.MAX_UPLOAD_FILES:
        raise UploadError("too_many_files", f"{len(files)} files; at most {settings.MAX_UPLOAD_FILES} per upload")
    for path, size in files:
        if size > settings.MAX_UPLOAD_BYTES:
            raise UploadError("too_large", f"{path}: {size} bytes; at most {settings.MAX_UPLOAD_BYTES} per file "
                                           "(use a chunked upload for large files)", status=413)
    total = sum(size for _, size in files)
    if total > settings.MAX_UPLOAD_BYTES:
        raise UploadError("too_large", f"the upload totals {total} bytes; at most {settings.MAX_UPLOAD_BYTES}",
                          status=413)


def upload_version(
    *,
    kind: str,
    owner: User,
    name: str,
    files: Iterable[IncomingFile] = (),
    sessions: Mapping[str, UploadSession] | None = None,
    stored: Mapping[str, Blob] | None = None,
    base_model: BaseModel | None = None,
    summary: str = "",
) -> Version:
    """Store uploaded files (and completed chunked sessions) as blobs, then record a version.

    `stored` are files already in the blob store: those a commit keeps from the version before it, and objects
    uploaded through the Hugging Face Hub's LFS API (hub/hfcompat).
    """
    files = list(files)
    sessions = dict(sessions or {})
    stored = dict(stored or {})
    paths = [check_upload_path(p) for p in [*(f.path for f in files), *sessions, *stored]]
    if len(set(paths)) != len(paths):
        raise UploadError("duplicate_file", "a file name appears twice in the upload")
    check_upload_sizes([(f.path, f.size) for f in files] + [(p, s.size) for p, s in sessions.items()]
                 + [(p, b.size) for p, b in stored.items()])
    for path, session in sessions.items():
        if session.owner_id != owner.pk or session.state != UploadSession.State.COMPLETE:
            raise UploadError("upload_incomplete", f"{path}: upload session {session.pk} is not a completed upload "
                                                   "of yours")
        if upload_session_expired(session):
            raise _expired_error(session.pk, "upload the file again", path=path)
    blobs: dict[str, Blob] = {check_upload_path(f.path): blob_put_stream(stream=f.stream) for f in files}
    blobs |= {check_upload_path(p): s.blob for p, s in sessions.items()}
    blobs |= {check_upload_path(p): b for p, b in stored.items()}
    with transaction.atomic():
        try:
            repository = repository_get_or_create(kind=kind, owner=owner, name=name, base_model=base_model)
        except ValidationError as exc:
            raise UploadError("bad_name", f"repository name {name!r}: {'; '.join(exc.messages)}") from None
        if summary:
            repository_set_summary(repository=repository, summary=summary)
        return version_create(repository=repository, files=blobs, created_by=owner, base_model=base_model)


def human_bytes(count: int) -> str:
    """A size as people read it: "8 GiB", "1.5 MiB", "100 bytes"."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


def human_seconds(seconds: int) -> str:
    """A duration as people read it: "24 h", "30 min", "90 s"."""
    for unit, scale in (("h", 3600), ("min", 60)):
        if seconds >= scale and seconds % scale == 0:
            return f"{seconds // scale} {unit}"
    return f"{seconds} s"


def _part_path(session_id: uuid.UUID | str) -> Path:
    return settings.UPLOAD_DIR / f"{session_id}.part"


def _idle_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.UPLOAD_SESSION_TTL_SECONDS)


def upload_session_expired(session: UploadSession) -> bool:
    """Whether the session sat idle (no chunk, no completion) for longer than UPLOAD_SESSION_TTL_SECONDS."""
    return session.updated_at < _idle_cutoff()


def _expired_error(session_id: uuid.UUID, what_now: str, *, path: str = "") -> UploadError:
    ttl = human_seconds(settings.UPLOAD_SESSION_TTL_SECONDS)
    where = f"{path}: " if path else ""
    return UploadError("upload_expired", f"{where}upload session {session_id} expired after {ttl} idle; {what_now}",
                       status=404)


def upload_session_get(*, owner: User, session_id: uuid.UUID) -> UploadSession:
    """One of `owner`'s sessions; an expired one is deleted on the spot (the beat would later) and answers 404."""
    session = UploadSession.objects.filter(pk=session_id, owner=owner).first()
    if session is None:
        raise UploadError("not_found", f"no upload session {session_id} of yours", status=404)
    if upload_session_expired(session):
        upload_sessions_expire(session_id=session.pk)
        raise _expired_error(session.pk, "start a new upload")
    return session


def upload_sessions_expire(*, owner: User | None = None, session_id: uuid.UUID | None = None) -> int:
    """Delete idle sessions (all, one owner's, or one) and their `.part` files; returns how many went.

    Rows are deleted under their lock and skipped while a chunk holds it, so a chunk being written is
    never pulled from under its writer; the files go after the commit. `.part` files that outlived
    their row (a crash between the two) go too once they are as old as the TTL.
    """
    with transaction.atomic():
        stale = UploadSession.objects.select_for_update(skip_locked=True).filter(updated_at__lt=_idle_cutoff())
        if owner is not None:
            stale = stale.filter(owner=owner)
        if session_id is not None:
            stale = stale.filter(pk=session_id)
        expired = list(stale.values_list("pk", flat=True))
        UploadSession.objects.filter(pk__in=expired).delete()
    for pk in expired:
        with contextlib.suppress(FileNotFoundError):
            _part_path(pk).unlink()
    if owner is None and session_id is None and settings.UPLOAD_DIR.is_dir():
        oldest = time.time() - settings.UPLOAD_SESSION_TTL_SECONDS
        for path in settings.UPLOAD_DIR.glob("*.part"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                if path.stat().st_mtime < oldest and not UploadSession.objects.filter(pk=uuid.UUID(path.stem)).exists():
                    path.unlink()
    return len(expired)


def _check_session_quota(owner: User, filename: str, size: int) -> None:
    """At most UPLOAD_SESSIONS_PER_USER open sessions declaring UPLOAD_SESSION_BYTES_PER_USER in all, per user."""
    open_sessions = UploadSession.objects.filter(owner=owner, state=UploadSession.State.OPEN)
    count, limit = open_sessions.count(), settings.UPLOAD_SESSIONS_PER_USER
    ttl = human_seconds(settings.UPLOAD_SESSION_TTL_SECONDS)
    if count >= limit:
        raise UploadError("too_many_upload_sessions", f"you have {count} open upload sessions; at most {limit} per "
                                                      f"user (complete them, or wait: idle ones expire after {ttl})",
                          status=429)
    declared = open_sessions.aggregate(total=Sum("size"))["total"] or 0
    limit_bytes = settings.UPLOAD_SESSION_BYTES_PER_USER
    if declared + size > limit_bytes:
        raise UploadError("upload_quota_exceeded", f"{filename}: {human_bytes(size)} more would bring your open upload "
                                                   f"sessions to {human_bytes(declared + size)}; at most "
                                                   f"{human_bytes(limit_bytes)} per user (complete the open ones, or "
                                                   f"wait: idle ones expire after {ttl})", status=429)


def upload_session_create(*, owner: User, filename: str, size: int) -> UploadSession:
    check_upload_path(filename)
    if size < 0:
        raise UploadError("bad_size", f"{filename}: size must be >= 0")
    check_upload_sizes([(filename, size)])
    upload_sessions_expire(owner=owner)  # idle sessions neither count nor keep their files
    with transaction.atomic():
        User.objects.select_for_update().only("pk").get(pk=owner.pk)  # one creation per user at a time: a fair count
        _check_session_quota(owner, filename, size)
        session = UploadSession.objects.create(owner=owner, filename=filename, size=size)
    settings.UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    _part_path(session.pk).touch()
    return session


def _lock_session(session: UploadSession) -> UploadSession:
    """The session's row, locked; an upload that expired (or was expired meanwhile) is gone."""
    locked = UploadSession.objects.select_for_update().filter(pk=session.pk).first()
    if locked is None or upload_session_expired(locked):
        raise _expired_error(session.pk, "start a new upload")
    return locked


def upload_session_append(*, session: UploadSession, offset: int, stream: BinaryIO, length: int,
                          total: int | None = None) -> UploadSession:
    """Append one chunk at `offset`, which must be what the server has received so far.

    `total` is the file size a Content-Range states; it must be the size the session declared.
    """
    if length > settings.MAX_CHUNK_BYTES:
        raise UploadError("chunk_too_large", f"chunks are at most {settings.MAX_CHUNK_BYTES} bytes", status=413)
    if total is not None and total != session.size:
        raise UploadError("size_mismatch", f"{session.filename}: Content-Range says the file is {total} bytes but "
                                           f"the session declared {session.size}")
    with transaction.atomic():
        locked = _lock_session(session)
        if locked.state != UploadSession.State.OPEN:
            raise UploadError("upload_closed", "this upload session is already complete", status=409)
        if offset != locked.received:
            raise UploadError("offset_mismatch", f"chunk starts at {offset} but the server has {locked.received} "
                                                 "bytes; resume from there", status=409)
        if offset + length > locked.size:
            raise UploadError("too_large", f"{locked.filename}: chunk ends at {offset + length}, past the declared "
                                           f"size {locked.size}", status=413)
        path = _part_path(locked.pk)
        with open(path, "r+b") as part:
            part.truncate(offset)  # drop the tail of a chunk that died half-written
            part.seek(offset)
            written = 0
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                written += len(chunk)
                if written > length:
                    raise UploadError("length_mismatch", "the chunk is longer than its Content-Length")
                part.write(chunk)
            part.flush()
            os.fsync(part.fileno())
        if written != length:
            raise UploadError("length_mismatch", f"received {written} bytes of a {length}-byte chunk; resume at "
                                                 f"{offset}", status=400)
        UploadSession.objects.filter(pk=locked.pk).update(received=F("received") + written, updated_at=timezone.now())
    session.refresh_from_db()
    return session


def upload_session_discard(*, session: UploadSession) -> None:
    """Drop a session and its `.part` file (its bytes hash to something else than promised: start again)."""
    UploadSession.objects.filter(pk=session.pk, state=UploadSession.State.OPEN).delete()
    with contextlib.suppress(FileNotFoundError):
        _part_path(session.pk).unlink()


def upload_session_complete(*, session: UploadSession, sha256: str) -> UploadSession:
    """Verify the whole file against the client's sha256, then move it into the blob store."""
    with transaction.atomic():
        locked = _lock_session(session)
        if locked.state == UploadSession.State.COMPLETE:
            if locked.blob_id != sha256.lower():
                raise UploadError("sha256_mismatch", f"{locked.filename}: this upload completed with sha256 "
                                                     f"{locked.blob_id}", status=409)
            return locked  # completing twice is harmless
        if locked.received != locked.size:
            raise UploadError("upload_incomplete", f"{locked.filename}: {locked.received} of {locked.size} bytes "
                                                   "received", status=409)
        try:
            blob = blob_put_file(path=_part_path(locked.pk), expected_sha256=sha256)
        except BlobIntegrityError as exc:
            raise UploadError("sha256_mismatch", f"{locked.filename}: {exc}; upload the file again") from None
        locked.blob, locked.state, locked.updated_at = blob, UploadSession.State.COMPLETE, timezone.now()
        locked.save(update_fields=["blob", "state", "updated_at"])
    with contextlib.suppress(FileNotFoundError):
        _part_path(locked.pk).unlink()
    return locked

"""Writes through the Hugging Face Hub's protocol: create a repository, upload LFS objects, commit.

huggingface_hub writes in four steps, and each is answered here with the catalog's own services:

1. `POST /api/repos/create` → `repository_create`.
2. `POST /api/{type}s/{repo}/preupload/{rev}`: which files go through LFS. Every non-empty file does (nomoat presents
   every file as an LFS object), so a commit's body stays small and file bytes never pass through it.
3. `POST {repo}.git/info/lfs/objects/batch` (the Git LFS batch API): an object the blob store holds needs no upload;
   any other is a chunked upload session of hub/catalog/uploads.py (quotas, expiry, resumable offsets) behind a
   signed URL, answered with the LFS "basic" transfer (one PUT) or, past MAX_CHUNK_BYTES, the Hub's multipart
   transfer (one PUT per part, then a completion POST). Parts already received are acknowledged without being
   written again, so an interrupted upload resumes where it stopped; the whole object's sha256 is verified at the
   end, as for any upload session.
4. `POST /api/{type}s/{repo}/commit/{rev}` (NDJSON): the previous version's files + additions − deletions become a
   new version through `upload_version`, so validation, moderation and evaluation follow as for any upload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError

from hub.accounts.models import User
from hub.catalog.models import Blob, Repository, UploadSession, Version, VersionFile, VersionState
from hub.catalog.selectors import versions_visible_to
from hub.catalog.services import repository_create
from hub.catalog.uploads import (
    IncomingFile,
    UploadError,
    check_upload_path,
    upload_session_append,
    upload_session_complete,
    upload_session_create,
    upload_session_discard,
    upload_version,
)
from hub.catalog.validation import is_hub_made
from hub.core.errors import ServiceError
from hub.hfcompat.errors import ENTRY_NOT_FOUND, REPO_NOT_FOUND, REVISION_NOT_FOUND, HubError
from hub.hfcompat.selectors import KIND_OF, MAIN

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
LFS_URL_SALT = "hfcompat.lfs-upload"


class HubWriteError(ServiceError):
    """A refused write; the Hub-compatible views answer it with `X-Error-Message`, which the client shows."""


def _kind(repo_type: str) -> str:
    if repo_type not in KIND_OF:
        raise HubWriteError(f"repo_type {repo_type!r}: nomoat hosts models (adapters) and datasets, not spaces",
                            code="bad_repo_type")
    return KIND_OF[repo_type]


def check_namespace(user: User, namespace: str) -> None:
    """Writes go to the caller's own namespace only (nomoat has no organizations)."""
    if namespace != user.username:
        raise HubWriteError(f"you can write only to your own namespace ({user.username}/…), not {namespace}/…",
                            code="permission_denied", status=403)


def own_repository(*, user: User, repo_type: str, namespace: str, name: str) -> Repository:
    """The caller's repository to write to; the client's own "create the repo first" hint follows a 404."""
    check_namespace(user, namespace)
    repo = Repository.objects.filter(kind=_kind(repo_type), owner=user, name=name).first()
    if repo is None:
        raise HubError(REPO_NOT_FOUND, f"{repo_type} repository {namespace}/{name} not found")
    return repo


def hub_repo_create(*, user: User, repo_type: str, namespace: str | None, name: str, private: bool | None) -> \
        Repository:
    """`create_repo`: an empty repository; 409 when it exists (`exist_ok=True` reads that as success)."""
    kind = _kind(repo_type)
    check_namespace(user, namespace or user.username)
    if private:
        raise HubWriteError("nomoat has no private repositories: a version stays unlisted until it is published; "
                            "create the repository without private=True", code="private_unsupported")
    try:
        return repository_create(kind=kind, owner=user, name=name)
    except ValidationError as exc:
        raise HubWriteError(f"repository name {name!r}: {'; '.join(exc.messages)}", code="bad_name") from None
    except ValueError:
        raise HubWriteError(f"You already created this {repo_type} repo: {user.username}/{name}",
                            code="repo_exists", status=409) from None


@dataclass(frozen=True)
class PreuploadFile:
    path: str
    size: int


def preupload_modes(*, repo: Repository, head: Version | None, files: Iterable[PreuploadFile]) -> list[dict]:
    """The Hub's answer to preupload: each file's upload mode and, when `head` holds the path, its sha256 (the
    client skips files whose content is unchanged). Paths and sizes are checked here, before any byte is sent."""
    held = {p: b.sha256 for p, b in uploaded_files(head).items()}
    answer = []
    for file in files:
        path = check_upload_path(file.path)
        if file.size > settings.MAX_UPLOAD_BYTES:
            raise HubWriteError(f"{path}: {file.size} bytes; at most {settings.MAX_UPLOAD_BYTES} per file",
                                code="too_large", status=413)
        answer.append({"path": file.path, "uploadMode": "lfs" if file.size else "regular", "shouldIgnore": False,
                       "oid": held.get(path)})
    return answer


def head_version(repo: Repository, revision: str) -> Version | None:
    """The version a commit builds on: `main` is the newest version not rejected (what the owner last pushed that
    entered the repository); `v<N>`, `<N>` or a commit id name one. None for an empty repository."""
    versions = repo.versions.order_by("-number")
    if revision == MAIN:
        return versions.exclude(state=VersionState.REJECTED).first()
    found = next((v for v in versions if revision.lower() in {v.commit_sha, f"v{v.number}", str(v.number)}), None)
    if found is None:
        raise HubError(REVISION_NOT_FOUND, f"{revision!r} is not a revision of {repo.full_name}: commit to main, a "
                                           "commit id, v<N> or <N>")
    return found


def uploaded_files(version: Version | None) -> dict[str, Blob]:
    """A version's files as its uploader sent them (without those the hub made)."""
    if version is None:
        return {}
    return {f.path: f.blob for f in version.files.select_related("blob")
            if not is_hub_made(f.path)}


# --- the Git LFS batch API and the upload URLs it hands out ---------------------------------------------------------


@dataclass(frozen=True)
class LfsObject:
    oid: str
    size: int


@dataclass(frozen=True)
class LfsUpload:
    """Where one object goes: None when the store holds it; else its session and, past one chunk, its parts."""

    obj: LfsObject
    session: UploadSession | None
    parts: int = 0  # 0: the basic transfer (one PUT); n: the multipart transfer in n parts of MAX_CHUNK_BYTES


def lfs_batch_upload(*, user: User, objects: Iterable[LfsObject]) -> list[LfsUpload]:
    """Plan the upload of each object: the blob store's objects are skipped (content addressing makes them the same
    bytes); an open session of the caller for the same object is reused, so a retried upload resumes."""
    plans = []
    for obj in {o.oid: o for o in objects}.values():  # two files of the same content are one object
        if not SHA256_RE.match(obj.oid):
            raise HubWriteError(f"LFS object {obj.oid!r}: the oid must be a sha256 (64 lower-case hex digits)",
                                code="bad_oid", status=422)
        if held_by(user, obj):
            plans.append(LfsUpload(obj=obj, session=None))
            continue
        session = (UploadSession.objects.filter(owner=user, filename=obj.oid, size=obj.size,
                                                state=UploadSession.State.OPEN).order_by("-received").first()
                   or upload_session_create(owner=user, filename=obj.oid, size=obj.size))
        chunk = settings.MAX_CHUNK_BYTES
        plans.append(LfsUpload(obj=obj, session=session, parts=0 if obj.size <= chunk else -(-obj.size // chunk)))
    return plans


def held_by(user: User, obj: LfsObject) -> bool:
    """Whether `user` may commit a stored object without sending it: it is a file of a version they can see, or they
    uploaded it. Anyone else sends the bytes (the store still keeps one copy), so the hub never tells that a hidden
    file exists, and nobody commits content they do not have."""
    if not Blob.objects.filter(sha256=obj.oid, size=obj.size).exists():
        return False
    return (VersionFile.objects.filter(blob_id=obj.oid, version__in=versions_visible_to(user)).exists()
            or UploadSession.objects.filter(owner=user, blob_id=obj.oid, state=UploadSession.State.COMPLETE).exists())


def lfs_upload_token(session: UploadSession) -> str:
    """The capability in an upload URL: the client PUTs to it without credentials, as to a presigned S3 URL."""
    return signing.dumps({"session": str(session.pk), "owner": session.owner_id}, salt=LFS_URL_SALT)


def lfs_session_for(token: str) -> UploadSession:
    try:
        claims = signing.loads(token, salt=LFS_URL_SALT, max_age=settings.UPLOAD_SESSION_TTL_SECONDS)
    except signing.BadSignature:
        raise HubWriteError("this LFS upload URL is invalid or expired; ask the batch API again",
                            code="bad_upload_url", status=403) from None
    session = UploadSession.objects.filter(pk=claims["session"], owner_id=claims["owner"]).first()
    if session is None:
        raise HubWriteError("this LFS upload expired; ask the batch API again", code="upload_expired", status=404)
    return session


def lfs_put_part(*, session: UploadSession, offset: int, stream: BinaryIO, length: int) -> UploadSession:
    """Store the `length` bytes at `offset` (a whole object, or one part of it).

    What the session already holds (a resumed upload sends it again) is read past and not rewritten, and the rest is
    appended where the session stopped: the object's sha256, checked at completion, vouches for every byte.
    """
    if session.state == UploadSession.State.COMPLETE:
        raise HubWriteError(f"LFS object {session.filename} is already uploaded", code="upload_closed", status=409)
    held = min(max(session.received - offset, 0), length)
    for remaining in range(held, 0, -(1 << 20)):
        if not stream.read(min(remaining, 1 << 20)):
            break
    if held == length:
        return session
    return upload_session_append(session=session, offset=offset + held, stream=stream, length=length - held,
                                 total=session.size)


def lfs_complete(*, session: UploadSession, oid: str) -> Blob:
    if oid != session.filename:
        raise HubWriteError(f"this upload URL is for LFS object {session.filename}, not {oid}", code="oid_mismatch",
                            status=422)
    try:
        return upload_session_complete(session=session, sha256=oid).blob
    except UploadError as exc:
        if exc.code == "sha256_mismatch":
            # The next batch starts a fresh session: resuming this one would keep the wrong bytes.
            upload_session_discard(session=session)
        raise


def lfs_verify(*, user: User, oid: str, size: int) -> None:
    if not held_by(user, LfsObject(oid=oid, size=size)):
        raise HubWriteError(f"LFS object {oid} ({size} bytes) was not uploaded", code="lfs_missing", status=404)


# --- the commit ------------------------------------------------------------------------------------------------------


@dataclass
class Commit:
    """A parsed NDJSON commit: the header's summary and parent, and the operations."""

    summary: str = ""
    parent: str | None = None
    regular: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, LfsObject] = field(default_factory=dict)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)


def commit_parse(lines: Iterable[bytes]) -> Commit:
    """The Hub's commit payload, one JSON object per line (`header`, `file`, `lfsFile`, `deletedFile`,
    `deletedFolder`); a line that is not one of those is refused with its number."""
    commit = Commit()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            key, value = item["key"], item["value"]
            if key == "header":
                commit.summary, commit.parent = str(value.get("summary") or ""), value.get("parentCommit")
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise ValueError(f"encoding {value.get('encoding')!r} (only base64 is read)")
                commit.regular[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key == "lfsFile":
                if value.get("algo", "sha256") != "sha256":
                    raise ValueError(f"algo {value.get('algo')!r} (only sha256 is read)")
                commit.lfs[value["path"]] = LfsObject(oid=str(value["oid"]), size=int(value.get("size", -1)))
            elif key == "deletedFile":
                commit.deleted_files.append(value["path"])
            elif key == "deletedFolder":
                commit.deleted_folders.append(value["path"].rstrip("/"))
            else:
                raise ValueError(f"unknown key {key!r}")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise HubWriteError(f"commit payload line {number}: not a commit operation ({exc})",
                                code="bad_commit") from None
    return commit


def hub_commit(*, user: User, repo: Repository, revision: str, commit: Commit) -> Version:
    """Record the commit as a new version: the head's files, minus deletions, plus additions (LFS objects must be in
    the blob store: uploaded through the batch API, or already there). Validation follows on commit."""
    head = head_version(repo, revision)
    if commit.parent and (head is None or commit.parent != head.commit_sha):
        raise HubWriteError(f"parent commit {commit.parent} is not the head of {repo.full_name} "
                            f"({head.commit_sha if head else 'empty'}): a commit happened since; pull and retry",
                            code="parent_mismatch", status=412)
    files = uploaded_files(head)
    for path in commit.deleted_files:
        if files.pop(path.strip("/"), None) is None:
            raise HubError(ENTRY_NOT_FOUND, f"A file with this name doesn't exist: {path} in {repo.full_name}")
    for folder in commit.deleted_folders:
        below = [p for p in files if p.startswith(f"{folder}/")]
        if not below:
            raise HubError(ENTRY_NOT_FOUND, f"A folder with this name doesn't exist: {folder} in {repo.full_name}")
        for path in below:
            del files[path]
    for path in [*commit.regular, *commit.lfs]:
        files.pop(path, None)
    blobs = {b.sha256: b for b in Blob.objects.filter(sha256__in=[o.oid for o in commit.lfs.values()])}
    for path, obj in commit.lfs.items():
        blob = blobs.get(obj.oid)
        if blob is None or obj.size not in {-1, blob.size} or not held_by(user, LfsObject(obj.oid, blob.size)):
            raise HubWriteError(f"{path}: LFS object {obj.oid} was not uploaded; upload it through the LFS batch API "
                                "before committing", code="lfs_missing")
        files[path] = blob
    if not files and not commit.regular:
        raise HubWriteError(f"the commit would leave {repo.full_name} with no files", code="no_files")
    return upload_version(
        kind=repo.kind, owner=user, name=repo.name, stored=files,
        files=[IncomingFile(path=p, stream=io.BytesIO(data), size=len(data)) for p, data in commit.regular.items()],
    )


async def version_await_validation(version_id: int, *, seconds: float) -> Version:
    """The version once a worker has validated it, or as it is after `seconds` (validation may still be running).

    The Hub answers a commit when it is recorded; nomoat waits a little so that a push the validators refuse fails
    in the client with their reasons, instead of succeeding and being rejected later out of sight. It waits on the
    event loop (the hub serves ASGI), so a waiting commit holds no thread that runs views.
    """
    deadline = time.monotonic() + seconds
    while True:
        version = await Version.objects.select_related("repository__owner").aget(pk=version_id)
        if version.state not in {VersionState.UPLOADED, VersionState.VALIDATING} or time.monotonic() >= deadline:
            return version
        await asyncio.sleep(0.2)


def rejection_message(version: Version) -> str:
    return f"{version.repository.full_name} v{version.number} was rejected: {version.state_reason}"

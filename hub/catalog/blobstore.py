"""The content-addressed blob store: every file is stored once, under its sha256.

Writes are atomic (a temporary object, the hash verified, then committed under its address),
streamed in chunks, and reads take byte ranges. Two backends share one interface: the local
filesystem (the embedded default) and S3 through boto3 (any S3-protocol server).

A store that cannot be reached (S3's connection errors, timeouts and 5xx answers after boto3's bounded retries; a
file store whose directory is gone or failing, as when its volume is unmounted) raises BlobStoreUnavailable, which
requests answer with 503 and Retry-After. A blob is always written before the rows that name it, so an outage
leaves at most a blob that no row names yet: harmless, since content is stored under its own hash and the next
upload of the same bytes reuses it instead of storing it twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from hub.core.errors import ServiceUnavailable
from workers.engine.fsutil import atomic_writer

CHUNK_BYTES = 1 << 20
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFound(FileNotFoundError):
    pass


class BlobIntegrityError(ValueError):
    pass


class BlobStoreUnavailable(ServiceUnavailable):
    code = "blob_store_unavailable"

    def __init__(self, where: str, doing: str, cause: BaseException) -> None:
        from django.conf import settings

        wait = settings.OUTAGE_RETRY_AFTER_SECONDS
        unrecorded = "; nothing was recorded" if doing.startswith("storing") else ""
        super().__init__(f"the blob store ({where}) cannot be reached while {doing} ({type(cause).__name__}: {cause})"
                         f"{unrecorded}: try again in {wait} s", retry_after=wait)


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def _check_address(sha256: str) -> str:
    if not SHA256_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def _spool(stream: BinaryIO, into: BinaryIO) -> StoredBlob:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
        digest.update(chunk)
        into.write(chunk)
        size += len(chunk)
    return StoredBlob(digest.hexdigest(), size)


class BlobStoreBase:
    """What both backends share: put from a path, verify an expected hash."""

    def put_file(self, path: Path | str, *, expected_sha256: str | None = None) -> StoredBlob:
        with open(path, "rb") as handle:
            return self.put_stream(handle, expected_sha256=expected_sha256)

    @staticmethod
    def _verify(blob: StoredBlob, expected_sha256: str | None) -> None:
        if expected_sha256 is not None and blob.sha256 != expected_sha256.lower():
            raise BlobIntegrityError(f"content hashes to {blob.sha256}, expected {expected_sha256}")


class FileBlobStore(BlobStoreBase):
    """Blobs under root/ab/cd/<sha256>; temporary files in root/tmp on the same filesystem."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        sha256 = _check_address(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _unavailable(self, doing: str, cause: OSError) -> BlobStoreUnavailable:
        return BlobStoreUnavailable(f"the directory {self.root}", doing, cause)

    def _missing(self, sha256: str) -> Exception:
        """Why a blob's file is not there: the blob is unknown, or the whole store is gone (its volume unmounted)."""
        if not (self.root / "tmp").is_dir():
            return self._unavailable("reading", FileNotFoundError(f"{self.root / 'tmp'} is missing"))
        return BlobNotFound(sha256)

    def put_stream(self, stream: BinaryIO, *, expected_sha256: str | None = None) -> StoredBlob:
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", suffix=".part")
        except OSError as exc:
            raise self._unavailable("storing a file", exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                # Only the store's own writes mean the store failed; the source's read errors stay what they are.
                blob = _spool(stream, _StoreWrites(out, lambda exc: self._unavailable("storing a file", exc)))
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise self._unavailable("storing a file", exc) from exc
            self._verify(blob, expected_sha256)
            final = self._path(blob.sha256)
            try:
                if final.exists():
                    os.unlink(tmp)  # identical content is stored once
                else:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, final)
            except OSError as exc:
                raise self._unavailable("storing a file", exc) from exc
            return blob
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            raise self._missing(sha256) from None

    def read_range(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end] inclusive (end None: to the end of the blob)."""
        path = self._path(sha256)
        if not path.is_file():
            raise self._missing(sha256)
        return self._iter_file(path, start, end)

    @staticmethod
    def _iter_file(path: Path, start: int, end: int | None) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def local_path(self, sha256: str) -> Path:
        path = self._path(sha256)
        if not path.is_file():
            raise self._missing(sha256)
        return path

    def download_url(self, sha256: str, filename: str) -> str | None:
        return None


class S3BlobStore(BlobStoreBase):
    """Blobs at s3://bucket/prefix/ab/cd/<sha256>; uploads go to prefix/tmp/ then are copied into place."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        cache_dir: Path | str,
        presign: bool = False,
        connect_timeout: float = 3,
        read_timeout: float = 30,
        max_attempts: int = 3,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.presign = presign
        self.cache_dir = Path(cache_dir)
        self.where = f"S3 bucket {bucket} at {endpoint_url or 'AWS'}"
        # Bounded, so an unreachable store fails a request in seconds (a 503) rather than holding it.
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=Config(
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"}))

    @contextlib.contextmanager
    def _reachable(self, doing: str) -> Iterator[None]:
        """Connection errors, timeouts and 5xx answers (after boto3's retries) as BlobStoreUnavailable."""
        try:
            yield
        except Exception as exc:
            if _s3_unreachable(exc):
                raise BlobStoreUnavailable(self.where, doing, exc) from exc
            raise

    def _chunks(self, body, doing: str) -> Iterator[bytes]:
        with self._reachable(doing):
            yield from body.iter_chunks(CHUNK_BYTES)

    def _key(self, sha256: str) -> str:
        sha256 = _check_address(sha256)
        return "/".join(p for p in (self.prefix, sha256[:2], sha256[2:4], sha256) if p)

    def put_stream(self, stream: BinaryIO, *, expected_sha256: str | None = None) -> StoredBlob:
        # Spool to local disk while hashing: the address must be known before the object is
        # committed, and a retried multipart upload needs a seekable source.
        with tempfile.TemporaryFile() as spool:
            blob = _spool(stream, spool)
            self._verify(blob, expected_sha256)
            if self.exists(blob.sha256, doing="storing a file"):
                return blob
            tmp_key = "/".join(p for p in (self.prefix, "tmp", uuid.uuid4().hex) if p)
            spool.seek(0)
            with self._reachable("storing a file"):
                self.client.upload_fileobj(spool, self.bucket, tmp_key)
        # An outage between these calls can leave the temporary object: no row ever names prefix/tmp/ (an S3
        # lifecycle rule expiring that prefix clears such leftovers).
        with self._reachable("storing a file"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=tmp_key)
                if head["ContentLength"] != blob.size:
                    raise BlobIntegrityError(f"stored {head['ContentLength']} bytes, expected {blob.size}")
                self.client.copy({"Bucket": self.bucket, "Key": tmp_key}, self.bucket, self._key(blob.sha256))
            finally:
                self._delete_temporary(tmp_key)
        return blob

    def _delete_temporary(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            # The blob itself is in place (or the put failed anyway): a leftover under prefix/tmp/ is harmless.
            if not _s3_unreachable(exc):
                raise

    def exists(self, sha256: str, *, doing: str = "reading") -> bool:
        try:
            self.size(sha256, doing=doing)
            return True
        except BlobNotFound:
            return False

    def size(self, sha256: str, *, doing: str = "reading") -> int:
        from botocore.exceptions import ClientError

        try:
            with self._reachable(doing):
                return self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))["ContentLength"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                raise BlobNotFound(sha256) from None
            raise

    def read_range(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        byte_range = f"bytes={start}-{'' if end is None else end}"
        try:
            with self._reachable("reading"):
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256), Range=byte_range)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                raise BlobNotFound(sha256) from None
            raise
        return self._chunks(body, "reading")

    def local_path(self, sha256: str) -> Path:
        """A verified local copy in the cache dir (workers memory-map files, which needs a path)."""
        path = self.cache_dir / sha256[:2] / sha256
        if path.is_file():
            return path
        digest = hashlib.sha256()
        with atomic_writer(path) as out:  # a mismatch raises inside, so nothing lands under the name
            for chunk in self.read_range(sha256):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != sha256:
                raise BlobIntegrityError(f"s3 object for {sha256} hashes to {digest.hexdigest()}")
        return path

    def download_url(self, sha256: str, filename: str) -> str | None:
        if not self.presign:
            return None
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(sha256),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=3600,
        )


def _s3_unreachable(exc: BaseException) -> bool:
    """Whether an S3 call failed because the store is unreachable or failing (not because of what was asked)."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    cause: BaseException | None = exc
    while cause is not None:  # boto3's transfer manager wraps the error it met (S3UploadFailedError)
        if isinstance(cause, BotoConnectionError | HTTPClientError):
            return True
        if isinstance(cause, ClientError) and cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class _StoreWrites:
    """Writes into the store's temporary file, an OSError there raised as the store's failure."""

    def __init__(self, out: BinaryIO, failure: Callable[[OSError], Exception]) -> None:
        self.out, self.failure = out, failure

    def write(self, data: bytes) -> int:
        try:
            return self.out.write(data)
        except OSError as exc:
            raise self.failure(exc) from exc


def blob_store_from_url(url: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                        cache_dir: Path | str = "", presign: bool = False,
                        timeouts: tuple[float, float, int] = (3, 30, 3)) -> FileBlobStore | S3BlobStore:
    """`timeouts`: an S3 store's connect and read timeouts (seconds) and attempts per call."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        connect_timeout, read_timeout, max_attempts = timeouts
        return S3BlobStore(parsed.netloc, parsed.path, endpoint_url=endpoint_url, region=region, cache_dir=cache_dir,
                           presign=presign, connect_timeout=connect_timeout, read_timeout=read_timeout,
                           max_attempts=max_attempts)
    raise ValueError(f"BLOB_STORE={url!r}: expected file:///path or s3://bucket/prefix")


@cache
def _store_for(url: str, endpoint_url: str | None, region: str, cache_dir: str, presign: bool,
               timeouts: tuple[float, float, int]):
    return blob_store_from_url(url, endpoint_url=endpoint_url, region=region, cache_dir=cache_dir, presign=presign,
                               timeouts=timeouts)


class _ChunkStream(io.RawIOBase):
    """A read-only binary stream over an iterator of byte chunks (what read_range yields)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def open_blob(sha256: str, *, limit: int | None = None) -> BinaryIO:
    """The blob (or its first `limit` bytes) as a buffered binary stream, read from the store as it is consumed."""
    end = None if limit is None else limit - 1
    return io.BufferedReader(_ChunkStream(get_blob_store().read_range(sha256, 0, end)))


def get_blob_store() -> FileBlobStore | S3BlobStore:
    """The store configured by settings (one instance per configuration)."""
    from django.conf import settings

    return _store_for(settings.BLOB_STORE, settings.S3_ENDPOINT_URL, settings.S3_REGION,
                      str(settings.BLOB_CACHE_DIR), settings.S3_PRESIGN_DOWNLOADS,
                      (settings.S3_CONNECT_TIMEOUT_SECONDS, settings.S3_READ_TIMEOUT_SECONDS, settings.S3_MAX_ATTEMPTS))


def copy_blob_to(store: FileBlobStore | S3BlobStore, sha256: str, dest: Path) -> Path:
    """Materialize a blob as a file at dest (hard link when the store is local)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = store.local_path(sha256)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)
    return dest

"""Resumable transfers: chunked uploads into hub upload sessions, and range downloads into `.part` files.

Uploads: each file goes through an upload session. The session's URL is written to a journal
(keyed by endpoint, content sha256, size and name) before the first byte is sent, so a run that
dies (network, Ctrl-C, a killed process) is resumed by the next run from the server's offset.

Downloads: bytes land in `<dest>.part`. A file over the parallel threshold is fetched as
several Range requests at once, each written at its own offset; their progress is kept in
`<dest>.part.json` (written before any byte), so a resumed run knows which holes remain. Without
that sidecar the `.part` is a plain prefix and the download continues after its last byte.
The finished file's sha256 is checked before it is renamed into place; a mismatch deletes it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nomoat_cli.client import ApiError, Client, NetworkError, api_path, iter_body
from nomoat_cli.config import read_json, uploads_journal_path, write_private_json
from nomoat_cli.errors import CliError, ExitCode
from nomoat_cli.progress import Progress, human_bytes

CHUNK_BYTES = 8 * 1024**2  # per upload PUT; the hub accepts up to MAX_CHUNK_BYTES (64 MiB by default)
PARALLEL_THRESHOLD = 64 * 1024**2  # files this large are downloaded as parallel ranges
CONNECTIONS = 4
SIDECAR_SAVE_SECONDS = 1.0
READ_BYTES = 1 << 20


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(READ_BYTES), b""):
            digest.update(block)
            if progress:
                progress.advance(len(block))
    return digest.hexdigest()


# --- uploads ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    path: Path
    name: str  # the path inside the upload, with '/' separators
    size: int
    sha256: str


class UploadJournal:
    """Upload sessions not yet used by a version, so that running the same push again resumes them."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or uploads_journal_path()

    @staticmethod
    def key(client: Client, file: LocalFile) -> str:
        return f"{client.endpoint} {file.sha256} {file.size} {file.name}"

    def get(self, key: str) -> str | None:
        return read_json(self.path).get(key)

    def put(self, key: str, url: str | None) -> None:
        """Record `url` for `key`, or forget `key` when `url` is None."""
        entries = read_json(self.path)
        if url is None:
            entries.pop(key, None)
        else:
            entries[key] = url
        write_private_json(self.path, entries)


def _open_session(client: Client, file: LocalFile, journal: UploadJournal) -> dict[str, Any]:
    """The journal's session for this file when the hub still has it, else a new one (journalled at once)."""
    key = journal.key(client, file)
    url = journal.get(key)
    if url:
        try:
            session = client.get_json(url)
        except ApiError as exc:
            if exc.status != 404:
                raise
        else:
            if session["state"] == "open" or session["sha256"] == file.sha256:
                return {**session, "url": url}
    session = client.post_json(api_path("uploads"), {"filename": file.name, "size": file.size}).json()
    session["url"] = client.url(session["url"])
    journal.put(key, session["url"])
    return session


def upload_file(client: Client, file: LocalFile, journal: UploadJournal, *, chunk_bytes: int = CHUNK_BYTES,
                progress: bool = True) -> str:
    """Send `file` through a (possibly resumed) upload session, complete it, and return the session id."""
    session = _open_session(client, file, journal)
    url, offset = session["url"], session["offset"]
    if session["state"] == "open":
        resumed = f"resumed at {human_bytes(offset)}" if offset else ""
        with open(file.path, "rb") as handle, Progress(f"upload {file.name}", file.size, enabled=progress) as bar:
            bar.update(done=offset, message=resumed)
            while offset < file.size:
                handle.seek(offset)
                chunk = handle.read(min(chunk_bytes, file.size - offset))
                if not chunk:
                    raise CliError(f"{file.path} shrank while it was being uploaded; run the command again")
                headers = {"Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{file.size}",
                           "Content-Type": "application/octet-stream"}
                try:
                    offset = client.request("PUT", url, data=chunk, headers=headers).json()["offset"]
                except ApiError as exc:
                    if exc.code != "offset_mismatch":
                        raise
                    offset = client.get_json(url)["offset"]  # a retried chunk had arrived after all
                bar.update(done=offset)
    client.post_json(f"{url}/complete", {"sha256": file.sha256}, idempotent=True)
    return session["id"]


# --- downloads --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    url: str
    path: str  # relative path inside the download folder
    size: int
    sha256: str


@dataclass
class Segment:
    """A byte range still to fetch: `start` (the next byte) moves towards `end` (exclusive) as bytes land."""

    start: int
    end: int


def destination(folder: Path, relative: str) -> Path:
    """`folder/relative`, refusing paths from the hub that would land outside the folder."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(part in {"", ".", ".."} for part in parts):
        raise CliError(f"the hub sent an unsafe file path {relative!r}; refusing to write it", ExitCode.API)
    return folder.joinpath(*parts)


def split(start: int, end: int, pieces: int) -> list[Segment]:
    step = -(-(end - start) // pieces)
    return [Segment(s, min(s + step, end)) for s in range(start, end, step)] if end > start else []


class PartFile:
    """`<dest>.part` and its sidecar: what is left to fetch, saved so that another run can resume."""

    def __init__(self, dest: Path, remote: RemoteFile) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.sidecar = dest.with_name(dest.name + ".part.json")
        self.remote = remote

    def plan(self, *, parallel_threshold: int, connections: int) -> tuple[list[Segment], bool]:
        """(segments left, whether a sidecar tracks them). A sidecar for another file version is discarded."""
        saved = read_json(self.sidecar) if self.sidecar.exists() else {}
        if saved.get("sha256") == self.remote.sha256 and saved.get("size") == self.remote.size and self.path.exists():
            return [Segment(*pair) for pair in saved["segments"]], True
        self.sidecar.unlink(missing_ok=True)
        have = self.path.stat().st_size if self.path.exists() else 0
        if have > self.remote.size:  # not a prefix of this file: start over
            self.path.unlink()
            have = 0
        pieces = connections if self.remote.size >= parallel_threshold else 1
        segments = split(have, self.remote.size, pieces)
        return segments, len(segments) > 1

    def save(self, segments: list[Segment]) -> None:
        """Atomically, so that a run killed mid-save still leaves a readable sidecar."""
        left = [[s.start, s.end] for s in segments if s.start < s.end]
        write_private_json(self.sidecar, {"sha256": self.remote.sha256, "size": self.remote.size, "segments": left})

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def _body_from(response_body: Iterator[bytes], skip: int) -> Iterator[bytes]:
    """The body without its first `skip` bytes (when a server ignores Range and sends the whole file)."""
    for chunk in response_body:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        yield chunk[skip:]
        skip = 0


def _fetch(client: Client, remote: RemoteFile, fd: int, segment: Segment, bar: Progress,
           stop: threading.Event) -> None:
    """Fill one segment of the part file, going on from where it got to while broken connections make progress."""
    while segment.start < segment.end and not stop.is_set():
        before = segment.start
        headers = {"Range": f"bytes={segment.start}-{segment.end - 1}", "Accept-Encoding": "identity"}
        try:
            with client.request("GET", remote.url, stream=True, headers=headers) as response:
                skip = segment.start if response.status_code == 200 else 0
                for chunk in _body_from(iter_body(response, READ_BYTES), skip):
                    if stop.is_set():
                        return
                    chunk = chunk[: segment.end - segment.start]
                    os.pwrite(fd, chunk, segment.start)
                    segment.start += len(chunk)  # after the write: a saved sidecar never claims unwritten bytes
                    bar.advance(len(chunk))
                    if segment.start >= segment.end:
                        return
            raise NetworkError(f"{remote.path}: the hub ended the download at byte {segment.start}")
        except NetworkError:
            if segment.start == before:
                raise  # no progress (the request itself was already retried): give up


def _fill(client: Client, part: PartFile, segments: list[Segment], tracked: bool, bar: Progress) -> None:
    """Fetch the segments in parallel threads; save the sidecar every second and however this ends."""
    fd = os.open(part.path, os.O_RDWR | os.O_CREAT, 0o644)
    stop = threading.Event()
    try:
        if tracked:
            part.save(segments)  # before any byte: a part file with holes always has its sidecar
        with ThreadPoolExecutor(max_workers=max(len(segments), 1), thread_name_prefix="nomoat-range") as pool:
            futures = [pool.submit(_fetch, client, part.remote, fd, s, bar, stop) for s in segments]
            try:
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, timeout=SIDECAR_SAVE_SECONDS, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        future.result()  # the first failure stops the others below and propagates
                    if tracked:
                        part.save(segments)
            finally:
                stop.set()
        os.fsync(fd)
    finally:
        os.close(fd)
        if tracked:
            part.save(segments)


def download_file(client: Client, remote: RemoteFile, dest: Path, *, progress: bool = True,
                  parallel_threshold: int = PARALLEL_THRESHOLD, connections: int = CONNECTIONS) -> bool:
    """Download `remote` to `dest`, resuming a `.part`; verify its sha256 before renaming it into place.

    Returns False when `dest` already holds exactly this file. A mismatch deletes the download
    and raises CliError with exit code 3.
    """
    if dest.is_file() and dest.stat().st_size == remote.size and sha256_of(dest) == remote.sha256:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = PartFile(dest, remote)
    segments, tracked = part.plan(parallel_threshold=parallel_threshold, connections=connections)
    left = sum(s.end - s.start for s in segments)
    resumed = f"resumed with {human_bytes(remote.size - left)} already here" if remote.size - left else ""
    with Progress(remote.path, remote.size, enabled=progress) as bar:
        bar.update(done=remote.size - left, message=resumed)
        _fill(client, part, segments, tracked, bar)
        bar.update(message="verifying sha256")
        digest = sha256_of(part.path)
        if digest != remote.sha256:
            part.discard()
            bar.update(message="sha256 mismatch")
            raise CliError(f"{remote.path}: sha256 mismatch (expected {remote.sha256}, got {digest}); the download "
                           "was deleted, run the command again", ExitCode.VERIFICATION)
        os.replace(part.path, dest)
        part.sidecar.unlink(missing_ok=True)
        bar.update(message="verified")
    return True

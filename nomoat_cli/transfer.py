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
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import requests

from nomoat_cli.client import TIMEOUT_SECONDS, ApiError, Client, NetworkError, api_path, iter_body
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
    metalink: str | None = None  # its Metalink's URL: every source and the pieces' sha-256


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
    many = remote.metalink and remote.size >= MULTI_SOURCE_MIN_BYTES
    pieces = metalink_of(client, remote) if many else None
    if pieces is not None:
        report_sources(remote, download_from_sources(client, remote, dest, pieces, progress=progress))
        return True
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


# --- downloads from several sources -----------------------------------------------------------------------------------
#
# A file with a Metalink (RFC 5854) is fetched from every HTTP source it lists at once: Range requests of up to
# SPAN_BYTES, each piece checked against the Metalink's per-piece sha-256 (`<pieces type="sha-256">`) before it is
# written. A source that sends a piece that does not match is banned for the rest of the download (and named at the
# end); one that fails is dropped. Verified pieces are recorded in `<dest>.part.pieces.json` (written atomically, at
# least every second), so an interrupted run resumes without fetching them again. When the sources run dry, idle
# connections take over pieces still in flight on slower ones. No Metalink: the one-source download above.

METALINK_NS = "{urn:ietf:params:xml:ns:metalink}"
MAX_METALINK_BYTES = 16 * 1024**2
SPAN_BYTES = 4 * 1024**2
MULTI_SOURCE_MIN_BYTES = SPAN_BYTES  # smaller files come in one request from one source
CONNECTIONS_PER_SOURCE = 2
ENDGAME_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Pieces:
    """What a Metalink says of a file: its sources and the sha-256 of each piece."""

    urls: tuple[str, ...]
    length: int
    sha256: tuple[str, ...]


def read_metalink(body: bytes, remote: RemoteFile) -> Pieces | None:
    """The sources and piece hashes of `remote` in a Metalink 4 document (None when it has no usable pieces)."""
    import xml.etree.ElementTree as ET

    try:
        # The hub's own document; expat limits entity expansion and ElementTree never fetches external entities.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise CliError(f"{remote.path}: the hub's Metalink is not XML ({exc})", ExitCode.API) from None
    for file in root.iter(f"{METALINK_NS}file"):
        whole = file.find(f"{METALINK_NS}hash[@type='sha-256']")
        pieces = file.find(f"{METALINK_NS}pieces[@type='sha-256']")
        if whole is None or whole.text != remote.sha256 or pieces is None:
            continue
        urls = tuple(u.text.strip() for u in file.findall(f"{METALINK_NS}url") if u.text)
        hashes = tuple((h.text or "").strip() for h in pieces.findall(f"{METALINK_NS}hash"))
        length = int(pieces.get("length", "0"))
        if urls and length > 0 and len(hashes) == -(-remote.size // length):
            return Pieces(urls, length, hashes)
    return None


class PieceFile:
    """`<dest>.part` filled piece by piece, and the sidecar listing the pieces already verified."""

    def __init__(self, dest: Path, remote: RemoteFile, pieces: Pieces) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.sidecar = dest.with_name(dest.name + ".part.pieces.json")
        self.remote, self.pieces = remote, pieces
        saved = read_json(self.sidecar) if self.sidecar.exists() else {}
        same = (saved.get("sha256") == remote.sha256 and saved.get("piece_length") == pieces.length
                and self.path.exists())
        self.verified: set[int] = set(saved.get("verified", [])) if same else set()
        if not same:
            self.path.unlink(missing_ok=True)
            dest.with_name(dest.name + ".part.json").unlink(missing_ok=True)  # a one-source run's sidecar

    def span(self, index: int) -> tuple[int, int]:
        start = index * self.pieces.length
        return start, min(start + self.pieces.length, self.remote.size)

    def save(self) -> None:
        write_private_json(self.sidecar, {"sha256": self.remote.sha256, "piece_length": self.pieces.length,
                                          "verified": sorted(self.verified)})


@dataclass
class SourceStats:
    url: str
    bytes: int = 0
    pieces: int = 0
    banned: str = ""  # why it was banned (bad data), or dropped (failed)


class Swarm:
    """The shared state of one multi-source download: pieces left, in flight and verified; the sources' fates."""

    def __init__(self, part: PieceFile, urls: tuple[str, ...], bar: Progress) -> None:
        self.part, self.bar = part, bar
        self.lock = threading.Lock()
        self.left = [i for i in range(len(part.pieces.sha256)) if i not in part.verified]
        self.in_flight: dict[int, int] = {}  # piece -> connections fetching it
        self.sources = {url: SourceStats(url) for url in urls}
        self.fetched = 0

    def take(self, max_bytes: int) -> list[int]:
        """Contiguous pieces to fetch next; when none is left, pieces still in flight elsewhere (endgame)."""
        with self.lock:
            run: list[int] = []
            while self.left and (not run or (self.left[0] == run[-1] + 1
                                              and (len(run) + 1) * self.part.pieces.length <= max_bytes)):
                run.append(self.left.pop(0))
            if not run:  # endgame: a second connection for a piece only one is fetching
                run = sorted(i for i, n in self.in_flight.items() if n == 1 and i not in self.part.verified)[:1]
            for index in run:
                self.in_flight[index] = self.in_flight.get(index, 0) + 1
            return run

    def give_back(self, pieces: list[int]) -> None:
        """Pieces a connection did not finish go back to the front of the queue."""
        with self.lock:
            for index in pieces:
                self.in_flight[index] = self.in_flight.get(index, 1) - 1
                if self.in_flight[index] <= 0:
                    del self.in_flight[index]
                    if index not in self.part.verified and index not in self.left:
                        self.left.append(index)
            self.left.sort()

    def accept(self, source: SourceStats, index: int, data: bytes, fd: int) -> bool:
        """Write a piece that matches its sha-256 (once, whoever sends it first); False when it does not match."""
        if hashlib.sha256(data).hexdigest() != self.part.pieces.sha256[index]:
            return False
        with self.lock:
            source.bytes += len(data)
            if index in self.part.verified:
                return True
            os.pwrite(fd, data, self.part.span(index)[0])
            self.part.verified.add(index)
            self.in_flight.pop(index, None)
            source.pieces += 1
        self.bar.advance(len(data))
        return True

    @property
    def done(self) -> bool:
        return len(self.part.verified) == len(self.part.pieces.sha256)


def _session_for(client: Client, url: str) -> requests.Session:
    """The hub's own session (with its token) for the hub's URLs; a plain one for anyone else's."""
    if url.startswith(client.endpoint + "/"):
        return client.session
    session = requests.Session()
    session.headers["User-Agent"] = client.session.headers["User-Agent"]
    return session


def _connection(client: Client, swarm: Swarm, source: SourceStats, fd: int, stop: threading.Event,
                span_bytes: int) -> None:
    """One connection to one source: fetch spans of pieces until nothing is left, the source is banned, or it fails."""
    session = _session_for(client, source.url)
    failures = 0
    while not stop.is_set() and not swarm.done and not source.banned:
        run = swarm.take(span_bytes)
        if not run:
            with swarm.lock:
                if not swarm.in_flight:
                    return
            stop.wait(ENDGAME_POLL_SECONDS)  # a piece in flight may still come back to the queue
            continue
        first, last = swarm.part.span(run[0])[0], swarm.part.span(run[-1])[1]
        done: list[int] = []
        try:
            headers = {"Range": f"bytes={first}-{last - 1}", "Accept-Encoding": "identity"}
            with session.get(source.url, headers=headers, stream=True, timeout=TIMEOUT_SECONDS) as response:
                if response.status_code not in (200, 206):
                    raise NetworkError(f"HTTP {response.status_code}")
                skip = first if response.status_code == 200 else 0
                buffer = bytearray()
                body = _body_from(iter_body(response, READ_BYTES), skip)
                for position, index in enumerate(run):
                    if source.banned or all(i in swarm.part.verified for i in run[position:]):
                        break  # banned by its other connection, or faster ones finished the span (endgame)
                    start, end = swarm.part.span(index)
                    while len(buffer) < end - start:
                        chunk = next(body, b"")
                        if not chunk:
                            raise NetworkError(f"the body ended at byte {start + len(buffer)}")
                        buffer += chunk
                    piece, buffer = bytes(buffer[: end - start]), buffer[end - start:]
                    with swarm.lock:
                        swarm.fetched += len(piece)
                    if not swarm.accept(source, index, piece, fd):
                        source.banned = f"banned: piece {index} (bytes {start}-{end - 1}) did not match its sha-256"
                        return
                    done.append(index)
                    if stop.is_set():
                        return
            failures = 0
        except (NetworkError, requests.RequestException) as exc:
            failures += 1
            if failures >= 3:
                source.banned = f"dropped: {getattr(exc, 'message', None) or type(exc).__name__}"
                return
        finally:
            swarm.give_back([i for i in run if i not in done])


def metalink_of(client: Client, remote: RemoteFile) -> Pieces | None:
    """The file's sources and piece hashes; None (one plain source, then) when the hub has no Metalink for it."""
    try:
        response = client.request("GET", remote.metalink, stream=True)
    except (ApiError, NetworkError):
        return None  # e.g. an unpublished version, which only its plain URL serves
    with response:
        body = response.raw.read(MAX_METALINK_BYTES + 1, decode_content=True)
    if len(body) > MAX_METALINK_BYTES:
        return None
    return read_metalink(body, remote)


def report_sources(remote: RemoteFile, stats: list[SourceStats]) -> None:
    """What each source sent, and which were banned for bad data: on stderr, even with --quiet."""
    for source in stats:
        fate = f"; {source.banned}" if source.banned else ""
        print(f"nomoat: {remote.path} from {source.url}: {source.pieces} pieces, {human_bytes(source.bytes)}{fate}",
              file=sys.stderr)


def download_from_sources(client: Client, remote: RemoteFile, dest: Path, pieces: Pieces, *,
                          progress: bool = True) -> list[SourceStats]:
    """Fetch `remote` from every source of its Metalink at once, each piece verified; then its sha256, then rename.

    Returns what each source sent (and which were banned). Raises CliError when no source is left with pieces
    missing (exit code 4; a second run resumes), or when the whole file does not match its sha256 (exit code 3).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = PieceFile(dest, remote, pieces)
    have = sum(part.span(i)[1] - part.span(i)[0] for i in part.verified)
    with Progress(remote.path, remote.size, enabled=progress) as bar:
        bar.update(done=have, message=f"resumed with {human_bytes(have)} verified" if have else
                   f"from {len(pieces.urls)} sources")
        swarm = Swarm(part, pieces.urls, bar)
        fd = os.open(part.path, os.O_RDWR | os.O_CREAT, 0o644)
        stop = threading.Event()
        try:
            os.ftruncate(fd, remote.size)
            part.save()
            workers = [source for source in swarm.sources.values() for _ in range(CONNECTIONS_PER_SOURCE)]
            # Spans small enough that every connection gets several: a slow source then holds little of the file.
            span = max(pieces.length, min(SPAN_BYTES, remote.size // (4 * len(workers))))
            with ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="nomoat-source") as pool:
                futures = [pool.submit(_connection, client, swarm, source, fd, stop, span) for source in workers]
                try:
                    pending = set(futures)
                    while pending:
                        finished, pending = wait(pending, timeout=SIDECAR_SAVE_SECONDS, return_when=FIRST_EXCEPTION)
                        for future in finished:
                            future.result()
                        with swarm.lock:
                            part.save()
                finally:
                    stop.set()
            os.fsync(fd)
        finally:
            os.close(fd)
            with swarm.lock:
                part.save()
        stats = list(swarm.sources.values())
        if not swarm.done:
            why = "; ".join(f"{s.url}: {s.banned}" for s in stats if s.banned) or "no source answered"
            raise CliError(f"{remote.path}: {len(pieces.sha256) - len(part.verified)} pieces could not be fetched "
                           f"({why}); run the command again to resume", ExitCode.NETWORK)
        bar.update(message="verifying sha256")
        digest = sha256_of(part.path)
        if digest != remote.sha256:
            part.path.unlink(missing_ok=True)
            part.sidecar.unlink(missing_ok=True)
            raise CliError(f"{remote.path}: sha256 mismatch (expected {remote.sha256}, got {digest}) although every "
                           "piece matched the Metalink; the download was deleted", ExitCode.VERIFICATION)
        os.replace(part.path, dest)
        part.sidecar.unlink(missing_ok=True)
        bar.update(message="verified")
    print(f"nomoat: {remote.path}: {swarm.fetched} bytes fetched from {len(stats)} sources, {have} bytes were already "
          "verified", file=sys.stderr)
    return stats

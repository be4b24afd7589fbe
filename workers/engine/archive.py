"""Unpack an uploaded .zip / .tar(.gz) without trusting anything it says about itself.

Member names may climb out of the folder, members may be links or devices, and declared sizes
may lie (a zip bomb's directory claims a few bytes per file). So every name is checked before it
is written, only regular files and folders are created, and bytes are counted as they are
written. Everything lands in a staging folder beside `dest` that is renamed into place only
when the whole archive passed; on any error it is removed, so no partial output is ever left.
"""

from __future__ import annotations

import fnmatch
import lzma
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from workers.engine.errors import EngineInputError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
CHUNK_BYTES = 1 << 20
MAX_NAME_BYTES = 255  # one path component
MAX_PATH_BYTES = 1024  # a whole member name, well under PATH_MAX with the staging folder in front
MAX_DEPTH = 16
# Metadata that archivers add on their own (macOS Finder): skipped, never extracted.
IGNORED_PARTS = frozenset({"__MACOSX", ".DS_Store"})
# Errors the archive readers raise on corrupt or hostile input (never on our own writes).
READ_ERRORS = (
    zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, struct.error,
    EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
)
TAR_TYPE_MODES = {tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
                  tarfile.FIFOTYPE: stat.S_IFIFO}
GiB = 1024**3


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one upload may unpack to; ratios only count past `ratio_grace_bytes`."""

    max_files: int = 256  # entries of any kind, folders included
    max_total_bytes: int = 20 * GiB
    max_file_bytes: int = 10 * GiB
    max_ratio: float = 100.0
    ratio_grace_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # "file", "dir", or why it is refused ("a symbolic link", ...)
    declared_size: int
    open: Callable[[], BinaryIO]


def is_archive(path: Path) -> bool:
    """Whether `path` names an archive format extract_upload reads (by its suffix)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_upload(
    archive: Path,
    dest: Path,
    *,
    limits: ArchiveLimits = ArchiveLimits(),  # noqa: B008 - frozen, so sharing the default is safe
    allowed_names: Collection[str] | None = None,
) -> list[Path]:
    """Unpack `archive` into the new folder `dest` and return its files; raise EngineInputError on bad input.

    A single top-level folder wrapping everything is stripped. `allowed_names` are glob patterns
    (fnmatch, case-sensitive) the unpacked relative paths must match; None allows any name.
    """
    archive, dest = Path(archive), Path(dest)
    if not is_archive(archive):
        raise EngineInputError(f"expected an archive ending in {', '.join(ARCHIVE_SUFFIXES)}", file=archive.name,
                               code="archive_format")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        with _members(archive) as members:
            _unpack(members, staging, archive, limits)
        root = _strip_wrapper(staging)
        files = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
        for name in files:
            if allowed_names is not None and not any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed_names):
                raise EngineInputError(f"unexpected file; expected only {', '.join(sorted(allowed_names))}",
                                       file=archive.name, field=name, code="archive_name")
        os.replace(root, dest)  # rename(2) may replace an empty folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [dest / name for name in files]


def _unpack(members: Iterator[_Member], staging: Path, archive: Path, limits: ArchiveLimits) -> None:
    archive_size = max(archive.stat().st_size, 1)
    count = files = total = 0

    def fail(member: str, message: str, code: str) -> EngineInputError:
        return EngineInputError(message, file=archive.name, field=member, code=code)

    def check_total(member: str, file_bytes: int, total_bytes: int) -> None:
        if file_bytes > limits.max_file_bytes:
            raise fail(member, f"unpacks to more than {limits.max_file_bytes} bytes, the limit for one file", "too_large")
        if total_bytes > limits.max_total_bytes:
            raise fail(member, f"archive unpacks to more than {limits.max_total_bytes} bytes in all", "too_large")
        if total_bytes > limits.ratio_grace_bytes and total_bytes > limits.max_ratio * archive_size:
            raise fail(member, f"archive unpacks to more than {limits.max_ratio:g} times its own size "
                               f"({archive_size} bytes); refusing a likely zip bomb", "ratio")

    for member in members:
        count += 1  # every entry counts, folders and skipped ones too: each costs work even when it writes nothing
        if count > limits.max_files:
            raise fail(member.name, f"archive holds more than {limits.max_files} entries", "too_many_files")
        relative = _relative_path(member.name, fail)
        if relative is None or IGNORED_PARTS.intersection(relative.parts):
            continue
        if member.kind not in ("file", "dir"):
            raise fail(member.name, f"is {member.kind}; archives may hold only regular files and folders", "archive_member")
        target = staging.joinpath(*relative.parts)
        for parent in relative.parents:
            if staging.joinpath(*parent.parts).is_file():
                raise fail(member.name, f"is inside {parent}, which the archive also holds as a file", "archive_name")
        if member.kind == "dir":
            if target.is_file():
                raise fail(member.name, "is both a file and a folder in the archive", "archive_name")
            target.mkdir(parents=True, exist_ok=True)
            continue
        if target.exists():
            raise fail(member.name, "appears twice in the archive; expected unique names", "archive_name")
        files += 1
        check_total(member.name, member.declared_size, total + member.declared_size)  # honest bombs fail here
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "wb") as out:
            for chunk in _read_chunks(member, fail):
                written += len(chunk)
                total += len(chunk)
                check_total(member.name, written, total)  # lying ones fail here, before the bytes hit the disk
                out.write(chunk)
    if files == 0:
        raise EngineInputError("archive holds no files", file=archive.name, code="archive_empty")


def _read_chunks(member: _Member, fail: Callable[[str, str, str], EngineInputError]) -> Iterator[bytes]:
    try:
        with member.open() as source:
            while chunk := source.read(CHUNK_BYTES):
                yield chunk
    except READ_ERRORS as exc:
        raise fail(member.name, f"cannot be read, the archive is corrupt ({type(exc).__name__}: {exc})"[:300],
                   "archive_corrupt") from None


def _relative_path(name: str, fail: Callable[[str, str, str], EngineInputError]) -> PurePosixPath | None:
    """The member's path inside the archive, or None for an entry naming the archive root itself."""
    if not name.isprintable() or "\\" in name:
        raise fail(name, "name has control characters or backslashes; expected a plain relative path with '/'",
                   "archive_name")
    if name.startswith("/") or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):  # C:/...
        raise fail(name, "is an absolute path; expected a path relative to the archive root", "archive_path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise fail(name, "climbs out of the archive with '..'; expected a path inside it", "archive_path")
    if len(parts) > MAX_DEPTH or len(name.encode()) > MAX_PATH_BYTES or any(
            len(part.encode()) > MAX_NAME_BYTES for part in parts):
        raise fail(name, f"is nested deeper than {MAX_DEPTH}, longer than {MAX_PATH_BYTES} bytes, or has a name over "
                         f"{MAX_NAME_BYTES} bytes", "archive_name")
    return PurePosixPath(*parts) if parts else None


def _strip_wrapper(staging: Path) -> Path:
    """The folder holding the upload's files: `staging`, or the one folder that wraps everything in it."""
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return staging


@contextmanager
def _members(archive: Path) -> Iterator[Iterator[_Member]]:
    fail = EngineInputError(f"is not a readable {archive.suffix} archive", file=archive.name, code="archive_corrupt")
    if archive.name.lower().endswith(".zip"):
        try:
            handle = zipfile.ZipFile(archive)
        except READ_ERRORS:
            raise fail from None
        with handle:
            yield (_zip_member(handle, info) for info in handle.infolist())
    else:
        try:
            handle = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with below
        except READ_ERRORS:
            raise fail from None
        with handle:
            yield _tar_members(handle, fail)


def _zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16
    if info.flag_bits & 0x1:
        kind = "an encrypted file"
    elif info.is_dir() or stat.S_ISDIR(mode):
        kind = "dir"
    elif stat.S_IFMT(mode) in (0, stat.S_IFREG):
        kind = "file"
    else:
        kind = _special_kind(mode)
    return _Member(info.filename, kind, info.file_size, lambda: handle.open(info))


def _tar_members(handle: tarfile.TarFile, fail: EngineInputError) -> Iterator[_Member]:
    while True:
        try:
            info = handle.next()
        except READ_ERRORS:
            raise fail from None
        if info is None:
            return
        if info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        elif info.islnk():
            kind = "a hard link"
        else:
            kind = _special_kind(TAR_TYPE_MODES.get(info.type, 0))
        yield _Member(info.name, kind, info.size, lambda info=info: handle.extractfile(info))


def _special_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return f"an unsupported kind of entry (mode {mode:o})"

"""Atomic file writes: a reader never sees a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: Path | str) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path`; on success fsync and rename it into place, else remove it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield handle


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Like atomic_writer, for writers that open the file by name themselves (GGUFWriter, llama.cpp)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp_name)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def sha256_file(path: Path | str) -> str:
    """The hex sha256 of a file, read in chunks (by hashlib's own loop, which releases the GIL)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def staging_prefix(out_dir: Path) -> str:
    """What the names of a build's staging folder (and its builders' scratch folders) start with."""
    return f".{out_dir.name}.staging-"

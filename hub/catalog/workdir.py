"""Blobs as local files for the engine: the one place work dirs are laid out.

Workers hand the engine plain folders. A folder named by its content (`materialize_shared`) is made
once, appears whole (staged, then renamed) and is reused by every later task that needs the same
files: validation, builds and evaluations of one base model share its unpacked copy.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from hub.catalog.blobstore import copy_blob_to, get_blob_store
from hub.catalog.models import BaseModel, Version

Files = list[tuple[str, str]]  # (path, sha256)


def materialize(files: Iterable[tuple[str, str]], folder: Path) -> list[Path]:
    """(path, sha256) pairs as local files under folder (hard links into a local blob store)."""
    store = get_blob_store()
    return [copy_blob_to(store, sha256, folder / path) for path, sha256 in files]


def materialize_cached(files: Iterable[tuple[str, str]], folder: Path) -> Path:
    """Like materialize, into a folder named by its content and reused by later tasks; it appears whole."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    materialize(files, staging)
    try:
        staging.rename(folder)
    except OSError:  # another task materialized the same content first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def content_name(files: Files) -> str:
    """A folder name that changes whenever any file changes."""
    return hashlib.sha256("".join(f"{p}={s};" for p, s in sorted(files)).encode()).hexdigest()[:24]


def materialize_shared(kind: str, files: Files) -> Path:
    """A folder of `kind` ("models", "adapters") in the work dir, named by its content."""
    return materialize_cached(files, settings.WORK_DIR / kind / content_name(files))


def materialize_base(base: BaseModel) -> Path:
    return materialize_shared("models", [(f.path, f.blob.sha256) for f in base.files.select_related("blob")])


def version_files(version: Version) -> Files:
    return [(f.path, f.blob.sha256) for f in version.files.select_related("blob")]


def scratch_dir(*parts: str) -> Path:
    """An empty folder in the work dir for one task's own use, named by what it works on: holding that item's
    lease, the task is its only user, so whatever was there is a dead worker's and goes."""
    folder = settings.WORK_DIR.joinpath(*parts)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder

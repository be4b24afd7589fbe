"""Where a stack is built: its inputs materialized from the blob store, the engine's `build_stack` run on them,
and every output file stored only if it hashes to what the engine's manifest says."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings

from hub.catalog.models import Blob
from hub.catalog.services import blob_put_file
from hub.catalog.workdir import materialize_base, materialize_shared, version_files
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import stack_progress
from hub.stacks.signals import stack_artifact_stored
from workers.engine.build import MANIFEST_NAME
from workers.engine.build import build_stack as build_engine_stack
from workers.engine.recipe import Recipe

BUILD_SHARE = 0.9  # of the progress bar; verifying and storing take the rest


class ProgressReporter:
    """The engine's progress callback: throttled writes to the build row, each extending its lease."""

    def __init__(self, build: StackBuild, *, every_seconds: float = 0.5) -> None:
        self.build = build
        self.every_seconds = every_seconds
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_seconds or fraction >= 1.0:
            self.last = now
            stack_progress(build=self.build, fraction=BUILD_SHARE * fraction, message=message,
                           lease_seconds=settings.STACK_LEASE_SECONDS)


def build_and_store(build: StackBuild, out_dir: Path) -> tuple[dict[str, Any], dict[str, Blob]]:
    """The artifact's manifest and stored files, built in `out_dir`; the caller clears the work copies."""
    # Parsed here, where failures are the build's: a recipe stored under older rules fails cleanly.
    recipe = Recipe.from_dict(build.recipe)
    base_dir = materialize_base(build.base_model)
    adapter_dirs = {
        f"{m.version.repository.full_name}@{m.version.number}": materialize_shared("adapters", version_files(m.version))
        for m in build.members.select_related("version__repository__owner")
    }
    manifest = build_engine_stack(recipe, base_dir=base_dir, adapter_dirs=adapter_dirs, out_dir=out_dir,
                                  progress=ProgressReporter(build))
    stack_progress(build=build, fraction=BUILD_SHARE, message="verifying and storing the artifact",
                   lease_seconds=settings.STACK_LEASE_SECONDS, state=BuildState.VERIFYING)
    files = {entry["path"]: blob_put_file(path=out_dir / entry["path"], expected_sha256=entry["sha256"])
             for entry in manifest["files"]}
    files[MANIFEST_NAME] = blob_put_file(path=out_dir / MANIFEST_NAME)
    for _, extra in stack_artifact_stored.send(sender=StackBuild, build=build, files=dict(files)):
        files.update(extra or {})  # provenance: model.sig, the attestations, the adapters' bundles
    return manifest, files

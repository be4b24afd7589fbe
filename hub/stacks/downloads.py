"""Serving a stack's files, and what counts as a download of a stack."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from hub.catalog.downloads import Download, serve_blob
from hub.core.errors import ServiceError
from hub.stacks import selectors
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import stack_record_download


def serve_stack_file(request: HttpRequest, build: StackBuild, path: str) -> HttpResponse:
    """Download one file of a ready stack: the API, the pages and the HF-compatible routes all serve it so."""
    if build.state != BuildState.READY:
        raise ServiceError(f"stack {build.recipe_hash[:12]} is {build.state}; poll {build.recipe_hash} until it is "
                           "ready", code="not_ready", status=409)
    reason = selectors.stack_withdrawn_reason(build)
    if reason:
        raise ServiceError(selectors.stack_not_served_message(build, reason), code="withdrawn", status=404)
    file = next((f for f in build.files.all() if f.path == path), None)
    if file is None:
        raise ServiceError(f"{path} is not a file of stack {build.recipe_hash[:12]}", code="not_found", status=404)
    # A download of the stack is a download of its first weights file (not of configs or other shards).
    weights = sorted(f.path for f in build.files.all() if f.path.endswith((".safetensors", ".gguf")))
    counts = bool(weights) and path == weights[0]
    download = Download(key=f"stack:{build.pk}", record=lambda: stack_record_download(build=build)) if counts else None
    return serve_blob(request, sha256=file.blob.sha256, size=file.blob.size, filename=path.rsplit("/", 1)[-1],
                      download=download)

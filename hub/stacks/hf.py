"""A built stack is a read-only Hugging Face model repo `stacks/<recipe hash>` (registered at start-up)."""

from __future__ import annotations

from hub.hfcompat.errors import REPO_NOT_FOUND, REVISION_NOT_FOUND, HubError
from hub.hfcompat.selectors import MAIN, HubFile, Revision, register_resolver
from hub.stacks import selectors
from hub.stacks.downloads import serve_stack_file
from hub.stacks.models import BuildState, StackBuild

STACKS_NAMESPACE = "stacks"


@register_resolver
def stack_revision(*, user, repo_type: str, namespace: str, name: str, revision: str) -> Revision | None:
    """`main` (or the first 40 characters of the recipe hash) is the artifact; a stack has one revision."""
    if repo_type != "model" or namespace != STACKS_NAMESPACE:
        return None
    build = StackBuild.objects.filter(recipe_hash=name).prefetch_related("files__blob", "members__version").first()
    if build is None or build.state != BuildState.READY:
        state = "no such stack" if build is None else f"the stack is {build.state}"
        raise HubError(REPO_NOT_FOUND, f"stacks/{name}: {state}")
    withdrawn = selectors.stack_withdrawn_reason(build)
    if withdrawn:
        raise HubError(REPO_NOT_FOUND, f"stacks/{name} is no longer served: {withdrawn}")
    sha = build.recipe_hash[:40]
    if revision not in {MAIN, sha}:
        raise HubError(REVISION_NOT_FOUND, f"{revision!r} is not a revision of stacks/{name}: use main or {sha}")
    return Revision(
        repo_type="model", repo_id=f"{STACKS_NAMESPACE}/{build.recipe_hash}", sha=sha,
        files=tuple(HubFile(path=f.path, sha256=f.blob.sha256, size=f.blob.size) for f in build.files.all()),
        serve=lambda request, file: serve_stack_file(request, build, file.path),
        author=STACKS_NAMESPACE, created_at=build.created_at, last_modified=build.finished_at or build.created_at,
        downloads=build.downloads, tags=("stack", build.method, build.output),
        library_name="transformers" if build.output == "merged" else "peft",
    )

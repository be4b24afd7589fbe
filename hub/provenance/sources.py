"""Where a blob can be downloaded from: the one home of that answer, for web seeds, magnets and Metalinks.

Today: this hub's own download URL of every published version file and ready stack file holding the blob, plus
the BLOB_MIRROR_URLS (servers that hold blobs by sha256, e.g. a proxy over the blob store). Federation adds the
peers known to hold it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from hub.catalog.models import VersionFile, VersionState
from hub.stacks.models import BuildState, StackFile
from hub.stacks.selectors import stack_withdrawn_reason


@dataclass(frozen=True)
class Source:
    name: str  # the file name it is served under
    url: str  # absolute


def blob_sources(request: HttpRequest, sha256: str) -> list[Source]:
    """Every public URL that serves the blob; empty when nothing public holds it (then it answers as missing)."""
    found: list[Source] = []
    files = (VersionFile.objects.filter(blob_id=sha256, version__state=VersionState.PUBLISHED)
             .select_related("version__repository__owner").order_by("pk"))
    for file in files:
        repo = file.version.repository
        path = reverse(f"api:{repo.kind}-file", kwargs={"owner": repo.owner.username, "name": repo.name,
                                                        "number": file.version.number, "path": file.path})
        found.append(Source(file.path.rsplit("/", 1)[-1], request.build_absolute_uri(path)))
    stack_files = (StackFile.objects.filter(blob_id=sha256, build__state=BuildState.READY)
                   .select_related("build").prefetch_related("build__members__version").order_by("pk"))
    for file in stack_files:
        if not stack_withdrawn_reason(file.build):
            path = reverse("api:stack-file", kwargs={"recipe_hash": file.build.recipe_hash, "path": file.path})
            found.append(Source(file.path.rsplit("/", 1)[-1], request.build_absolute_uri(path)))
    if found:
        found += [Source(found[0].name, url) for url in mirror_urls(sha256)]
    return found


def mirror_urls(sha256: str) -> list[str]:
    """The BLOB_MIRROR_URLS for this blob."""
    return [template.format(sha256=sha256) for template in settings.BLOB_MIRROR_URLS]

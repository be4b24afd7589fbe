"""What a version looks like to other hubs: an ActivityStreams 2.0 `Document` with a small context of ours, and
the activities that carry it (Create, Update, Delete with a Tombstone, Announce, Flag).

The object's `id` is the version's page on its origin hub, so a person following the link lands on it; `files`
name every file by sha256 and size with its public download URL, which is all a mirroring hub needs to fetch and
check it. `content` is a short HTML summary with a link, so Mastodon shows a new release sensibly.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from hub.catalog.models import Version
from hub.federation.actors import CONTEXT, absolute, actor_url, public_url
from workers.engine.signing import is_mirror_attestation

# Our terms for what AS2 lacks, served at /federation/context.jsonld (hub.federation.urls_pages).
NOMOAT_TERMS: dict[str, object] = {
    "nomoat": "https://nomoat.invalid/ns#",
    "kind": "nomoat:kind",
    "version": "nomoat:version",
    "baseModel": "nomoat:baseModel",
    "license": "nomoat:license",
    "task": "nomoat:task",
    "tags": "nomoat:tags",
    "card": "nomoat:card",
    "files": {"@id": "nomoat:files", "@container": "@list"},
    "path": "nomoat:path",
    "sha256": "nomoat:sha256",
    "size": "nomoat:size",
    "repository": "nomoat:repository",
    "owner": "nomoat:owner",
    "lineage": "nomoat:lineage",
    "parents": {"@id": "nomoat:parents", "@type": "@id"},
    "datasets": "nomoat:datasets",
    "evalSummary": "nomoat:evalSummary",
    "reason": "nomoat:reason",
    "sources": "nomoat:sources",
    "attestations": "nomoat:attestations",
}


def context_document() -> dict:
    """The JSON-LD context document our objects name (served as application/ld+json)."""
    return {"@context": NOMOAT_TERMS}


def object_context() -> list:
    return [*CONTEXT, absolute(reverse("federation-context"))]


def version_object_id(version: Version) -> str:
    """The AS2 id of a version: its page on its origin (a mirrored version keeps its origin's)."""
    origin = getattr(version, "origin", None)
    if origin is not None:
        return origin.object_id
    repo = version.repository
    return absolute(reverse(f"{repo.kind}-version-page", args=[repo.owner.username, repo.name, version.number]))


def _files(version: Version) -> list[dict]:
    """Each file of a version by path, sha256 and size, with its public download URL on this hub."""
    repo = version.repository
    return [
        {"path": f.path, "sha256": f.blob.sha256, "size": f.blob.size,
         "url": absolute(reverse(f"api:{repo.kind}-file", args=[repo.owner.username, repo.name, version.number,
                                                                f.path]))}
        for f in version.files.select_related("blob").order_by("path")
    ]


def version_object(version: Version) -> dict:
    """A local version as an AS2 Document with our terms (its files by sha256, size and download URL)."""
    repo = version.repository
    owner = repo.owner.username
    object_id = version_object_id(version)
    files = _files(version)
    label = f"{owner}/{repo.name} v{version.number}"
    summary = repo.summary or f"a new {repo.kind} version"
    return {
        "@context": object_context(),
        "id": object_id,
        "type": "Document",
        "kind": repo.kind,
        "name": label,
        "url": object_id,
        "attributedTo": actor_url(repo.owner),
        "published": (version.published_at or version.created_at).isoformat(),
        "summary": repo.summary,
        "content": f'<p>{escape(label)}: {escape(summary)} <a href="{escape(object_id)}">{escape(object_id)}</a></p>',
        "repository": {"owner": owner, "name": repo.name, "url": absolute(reverse(
            f"{repo.kind}-page", args=[owner, repo.name]))},
        "version": version.number,
        "baseModel": version.base_model.name if version.base_model else None,
        "license": version.license,
        "task": version.task,
        "tags": sorted(t.name for t in version.tags.all()),
        "card": version.card_text,
        "files": files,
        "lineage": {
            "parents": [version_object_id(p) for p in version.parent_versions.select_related("repository__owner")],
            "datasets": sorted(d.full_name for d in version.training_datasets.select_related("owner")),
        },
        "evalSummary": {"score": repo.score},
    }


def create_activity(version: Version) -> dict:
    """The Create that announces a local version's publication (activity_publish adds id, actor, to, signature)."""
    return {"@context": object_context(), "type": "Create", "object": version_object(version)}


def update_activity(version: Version) -> dict:
    return {"@context": object_context(), "type": "Update", "object": version_object(version)}


def delete_activity(version: Version, reason: str) -> dict:
    """A takedown at the origin: a Delete whose Tombstone keeps the version's id and says why."""
    return {
        "@context": object_context(),
        "type": "Delete",
        "summary": reason,
        "object": {"id": version_object_id(version), "type": "Tombstone", "formerType": "Document",
                   "deleted": timezone.now().isoformat(), "reason": reason},
    }


def announce_activity(activity: dict, version: Version | None = None) -> dict:
    """Re-share a peer's signed activity (a Create, or a Delete of it) as it came, so its signature still verifies;
    with the mirrored `version`, `sources` offers this hub's copies of its files (by sha256) to fetch instead."""
    announce = {"@context": object_context(), "type": "Announce", "object": activity}
    if version is not None:
        files = _files(version)
        announce["sources"] = [{"sha256": entry["sha256"], "url": entry["url"]} for entry in files]
        # What this hub (and the hubs before it) attested of the copy, signed with their own keys: the next hub
        # keeps them beside the origin's model.sig, so the whole route stays visible.
        announce["attestations"] = [entry for entry in files if is_mirror_attestation(entry["path"])]
    return announce


def flag_activity(*, object_id: str, reason: str, comment: str) -> dict:
    """A report on an item of another hub, sent to its origin's moderators (by the hub actor: who reported it
    stays on this hub)."""
    return {"@context": object_context(), "type": "Flag", "object": [object_id], "content": comment,
            "reason": reason, "summary": f"reported on {public_url()}: {reason}"}

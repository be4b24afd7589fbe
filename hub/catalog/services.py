"""Writes for the catalog: blobs, base models, repositories and versions."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify

from hub.accounts.models import User
from hub.catalog.blobstore import get_blob_store
from hub.catalog.download_counts import count_download, flush_downloads
from hub.catalog.models import (
    BaseModel,
    BaseModelFile,
    Blob,
    RepoKind,
    Repository,
    Tag,
    Version,
    VersionFile,
    VersionState,
)
from hub.catalog.signals import version_passed_validation, version_published, version_uploaded
from hub.core.errors import ServiceError
from hub.core.leases import claim_with_lease, lease_expired, renew_lease

ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    VersionState.UPLOADED: {VersionState.VALIDATING},
    VersionState.VALIDATING: {VersionState.REJECTED, VersionState.PENDING_REVIEW, VersionState.PUBLISHED,
                              VersionState.VALIDATING},
    VersionState.PENDING_REVIEW: {VersionState.PUBLISHED, VersionState.REJECTED},
    VersionState.PUBLISHED: {VersionState.UNPUBLISHED},
    VersionState.UNPUBLISHED: {VersionState.PUBLISHED, VersionState.LISTED},
    VersionState.REJECTED: set(),
    # Its files fetched (on demand): validated like an upload. Taken down at its origin: unpublished.
    VersionState.LISTED: {VersionState.UPLOADED, VersionState.UNPUBLISHED},
}


class InvalidTransition(ValueError):
    pass


class BlobRefused(ServiceError):
    code = "blocked_digest"
    status = 422


# Checks that apps above the catalog register (hub.moderation refuses the digests of taken-down files): each takes a
# sha256 and returns why that content may not be stored, or None. Every blob put runs them, whatever the upload path.
BLOB_REFUSALS: list[Callable[[str], str | None]] = []


def blob_refusal(sha256: str) -> str | None:
    """Why content with this sha256 may not enter the hub, or None."""
    return next((reason for check in BLOB_REFUSALS if (reason := check(sha256))), None)


def _refuse_blocked(sha256: str) -> None:
    reason = blob_refusal(sha256)
    if reason:
        raise BlobRefused(f"a file with sha256 {sha256} is refused: {reason}")


def blob_put_stream(*, stream: BinaryIO, expected_sha256: str | None = None) -> Blob:
    """Store content (checked against `expected_sha256` when given); refused digests never get a Blob row."""
    if expected_sha256:
        _refuse_blocked(expected_sha256)
    stored = get_blob_store().put_stream(stream, expected_sha256=expected_sha256)
    _refuse_blocked(stored.sha256)
    blob, _ = Blob.objects.get_or_create(sha256=stored.sha256, defaults={"size": stored.size})
    return blob


def blob_put_file(*, path: Path | str, expected_sha256: str | None = None) -> Blob:
    with open(path, "rb") as handle:
        return blob_put_stream(stream=handle, expected_sha256=expected_sha256)


@transaction.atomic
def base_model_register(*, name: str, model_dir: Path, license: str, description: str = "") -> BaseModel:
    """Store a base model's HF folder (weights, tokenizer, configs, optional GGUF). Idempotent by name."""
    from workers.engine.safetensors_io import read_header
    from workers.engine.shapes import module_shapes, weight_files

    existing = BaseModel.objects.filter(name=name).first()
    if existing is not None:
        return existing
    config = json.loads((model_dir / "config.json").read_text())
    weights = weight_files(model_dir)
    parameter_count = sum(info.numel for path in weights for info in read_header(path).tensors.values())
    architectures = config.get("architectures") or [config.get("model_type", "unknown")]
    base = BaseModel.objects.create(
        name=name,
        architecture=architectures[0],
        parameter_count=parameter_count,
        license=license,
        description=description,
        config=config,
        module_shapes=module_shapes(weights),
    )
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        BaseModelFile.objects.create(base_model=base, path=path.name, blob=blob_put_file(path=path))
    return base


def repository_create(*, kind: str, owner: User, name: str, base_model: BaseModel | None = None,
                      summary: str = "") -> Repository:
    repository = Repository(kind=RepoKind(kind), owner=owner, name=name, base_model=base_model, summary=summary)
    repository.full_clean(exclude=["owner", "base_model"])
    try:
        with transaction.atomic():
            repository.save()
    except IntegrityError:
        raise ValueError(f"{kind} {owner.username}/{name} already exists") from None
    repository_search_refresh(repository_ids=[repository.pk])
    return repository


def repository_set_summary(*, repository: Repository, summary: str) -> None:
    Repository.objects.filter(pk=repository.pk).update(summary=summary[:300])
    repository_search_refresh(repository_ids=[repository.pk])


# The stored search document (hub/catalog/selectors.py `_searched` matches and ranks by it): the name (weight A,
# 'simple': names are not English), the summary (B) and the cards of published and listed versions (D), so anyone's search
# reads one GIN index; cards only their owner or a moderator may see are searched beside it. One UPDATE for any set
# of repositories: catalog migration 0007 backfills with it, bench/catalog_scale.py after its COPY.
SEARCH_DOCUMENT_SQL = """
UPDATE catalog_repository AS r SET search_document =
    setweight(to_tsvector('simple', r.name), 'A') || setweight(to_tsvector('english', r.summary), 'B')
    || setweight(to_tsvector('english', coalesce((SELECT string_agg(v.card_text, ' ') FROM catalog_version v
                                                 WHERE v.repository_id = r.id AND v.state IN ('published', 'listed')),
                                        '')), 'D')
"""


def repository_search_refresh(*, repository_ids: list[int] | None = None) -> None:
    """Recompute the search document of these repositories (all of them when None); nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if repository_ids is None:
            cursor.execute(SEARCH_DOCUMENT_SQL)
        else:
            cursor.execute(SEARCH_DOCUMENT_SQL + " WHERE r.id = ANY(%s)", [list(repository_ids)])


def repository_get_or_create(*, kind: str, owner: User, name: str, base_model: BaseModel | None = None) -> Repository:
    existing = Repository.objects.filter(kind=kind, owner=owner, name=name).first()
    return existing or repository_create(kind=kind, owner=owner, name=name, base_model=base_model)


@transaction.atomic
def version_create(
    *,
    repository: Repository,
    files: Mapping[str, Blob],
    created_by: User,
    base_model: BaseModel | None = None,
) -> Version:
    """Record a new version in state `uploaded` from already stored blobs; validation follows on commit."""
    card_text = ""
    if "README.md" in files:
        card_text = get_blob_store().local_path(files["README.md"].sha256).read_text(errors="replace")
    version = _version_new(repository=repository, digests={p: b.sha256 for p, b in files.items()},
                           card_text=card_text, created_by=created_by, base_model=base_model,
                           state=VersionState.UPLOADED)
    VersionFile.objects.bulk_create([VersionFile(version=version, path=p, blob=b) for p, b in sorted(files.items())])
    version_uploaded.send(sender=Version, version_id=version.pk)
    return version


@transaction.atomic
def version_list_remote(*, repository: Repository, digests: Mapping[str, str], card_text: str, created_by: User,
                        base_model: BaseModel | None = None) -> Version:
    """Record a version of another hub that this hub lists without its files (state `listed`): its card, tags and
    lineage as for an upload, `digests` ({path: sha256}) giving its commit id. No signal is sent: nothing validates,
    evaluates, signs or stacks it. The caller records where its files are (VersionOrigin.listed_files)."""
    version = _version_new(repository=repository, digests=digests, card_text=card_text, created_by=created_by,
                           base_model=base_model, state=VersionState.LISTED)
    repository_search_refresh(repository_ids=[repository.pk])
    return version


@transaction.atomic
def version_fill_listed(*, version: Version, files: Mapping[str, Blob]) -> Version:
    """A listed version's files, fetched and stored here: it becomes an `uploaded` version (the same row, its number
    and card kept), and validation follows on commit exactly as for an upload."""
    locked = Version.objects.select_for_update().get(pk=version.pk)
    if locked.state != VersionState.LISTED:
        raise InvalidTransition(f"{locked} is {locked.state}, not listed: its files are not filled in again")
    VersionFile.objects.bulk_create([VersionFile(version=locked, path=p, blob=b) for p, b in sorted(files.items())])
    locked.commit_sha = Version.make_commit_sha(locked.repository_id, locked.number,
                                                [(p, b.sha256) for p, b in files.items()])
    locked.state, locked.state_reason = VersionState.UPLOADED, ""
    locked.save(update_fields=["commit_sha", "state", "state_reason"])
    repository_search_refresh(repository_ids=[locked.repository_id])
    version_uploaded.send(sender=Version, version_id=locked.pk)
    return locked


def _version_new(*, repository: Repository, digests: Mapping[str, str], card_text: str, created_by: User,
                 base_model: BaseModel | None, state: str) -> Version:
    """The next version of `repository` with its card's fields, tags and lineage (its files are the caller's)."""
    from workers.engine.cards import parse_card
    from workers.engine.errors import EngineInputError

    locked = Repository.objects.select_for_update().get(pk=repository.pk)
    number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    card: dict = {}
    if card_text:
        try:
            card = parse_card(card_text).front_matter
        except EngineInputError:
            card = {}  # validation reports the exact problem; the version is still recorded
    version = Version.objects.create(
        repository=locked,
        number=number,
        state=state,
        commit_sha=Version.make_commit_sha(locked.pk, number, list(digests.items())),
        card_text=card_text,
        card=card,
        license=str(card.get("license") or "")[:64],
        task=str(card.get("task") or "")[:64],
        base_model=base_model or locked.base_model,
        created_by=created_by,
    )
    version.tags.set([Tag.objects.get_or_create(name=slugify(t)[:64])[0] for t in card_list(card, "tags") if slugify(t)])
    version.training_datasets.set(_repositories_named(RepoKind.DATASET, card_list(card, "datasets")))
    version.parent_versions.set(Version.objects.filter(
        state=VersionState.PUBLISHED,
        repository__in=_repositories_named(RepoKind.ADAPTER, card_list(card, "parent_adapters"))))
    Repository.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    return version


def card_list(card: dict, key: str) -> list[str]:
    """A card field as a list of strings, whatever the uploader wrote (validation reports bad shapes)."""
    value = card.get(key)
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value if isinstance(item, str | int)] if isinstance(value, list) else []


def _repositories_named(kind: str, names: list[str]):
    """Repositories on the hub among "owner/name" strings (lineage that points off the hub is dropped)."""
    wanted = Q()
    for full_name in names:
        owner, _, name = full_name.partition("/")
        wanted |= Q(owner__username=owner, name=name)
    return Repository.objects.filter(wanted, kind=kind) if names else Repository.objects.none()


def version_set_state(*, version: Version, state: str, reason: str = "") -> Version:
    """Move a version along its life cycle; anything not in ALLOWED_TRANSITIONS is refused.

    Setting the state a version is already in only changes its reason (a moderator confirming a
    takedown replaces "hidden by reports" with their own reason).
    """
    with transaction.atomic():
        locked = Version.objects.select_for_update().get(pk=version.pk)
        if state != locked.state and state not in ALLOWED_TRANSITIONS[locked.state]:
            raise InvalidTransition(f"{locked} cannot go from {locked.state} to {state}")
        if state == VersionState.PUBLISHED and locked.state != VersionState.PUBLISHED:
            transaction.on_commit(lambda: announce_published(locked.pk))
        locked.state = state
        locked.state_reason = reason
        if state == VersionState.PUBLISHED and locked.published_at is None:
            locked.published_at = timezone.now()
        locked.save(update_fields=["state", "state_reason", "published_at"])
        repository_search_refresh(repository_ids=[locked.repository_id])
    version.refresh_from_db()
    return version


def announce_published(version_id: int) -> None:
    version_published.send(sender=Version, version=Version.objects.select_related("repository").get(pk=version_id))


def version_claim_for_validation(*, version_id: int, lease_seconds: int) -> Version | None:
    """Take a version for validation: from `uploaded`, or from `validating` whose lease ran out."""
    claimable = Q(state=VersionState.UPLOADED) | (Q(state=VersionState.VALIDATING) & lease_expired())
    if not claim_with_lease(Version, version_id, claimable, lease_seconds=lease_seconds, state=VersionState.VALIDATING):
        return None
    return Version.objects.select_related("repository", "base_model", "created_by").get(pk=version_id)


def version_renew_validation_lease(*, version: Version, lease_seconds: int) -> bool:
    """The validating worker's heartbeat; False once the version was finished (or re-claimed after a lapse)."""
    return renew_lease(Version, version.pk, Q(state=VersionState.VALIDATING), lease_seconds=lease_seconds)


@transaction.atomic
def version_record_validation(*, version: Version, report: dict, files: Mapping[str, Blob] | None = None) -> Version:
    """Store a validation report; the version becomes rejected, pending_review, or published for trusted uploaders.

    `files` replaces the version's files (an uploaded archive becomes the files it held). A version
    that passed enters the review queue (a trusted uploader's only when sampled).
    """
    locked = Version.objects.select_for_update().get(pk=version.pk)
    if locked.state != VersionState.VALIDATING:
        return locked  # someone else finished it first
    if files is not None:
        locked.files.all().delete()
        VersionFile.objects.bulk_create([VersionFile(version=locked, path=p, blob=b) for p, b in sorted(files.items())])
        locked.commit_sha = Version.make_commit_sha(locked.repository_id, locked.number,
                                                    [(p, b.sha256) for p, b in files.items()])
    failures = [c for c in report.get("checks", []) if not c.get("passed") and not c.get("skipped")]
    if failures:
        locked.state = VersionState.REJECTED
        locked.state_reason = "; ".join(c["message"] for c in failures[:5])
    elif locked.created_by.has_perm("moderation.skip_review"):
        locked.state, locked.state_reason = VersionState.PUBLISHED, "published on upload (trusted uploader)"
        transaction.on_commit(lambda: announce_published(locked.pk))
        locked.published_at = timezone.now()
    else:
        locked.state, locked.state_reason = VersionState.PENDING_REVIEW, "passed validation; waiting for a moderator"
    locked.validation_report = report
    locked.stats = report.get("stats", {})
    resolved_base = BaseModel.objects.filter(name=locked.stats.get("base_model") or "").first()
    if locked.base_model_id is None and resolved_base is not None:
        # The adapter named its base in adapter_config.json; record it so the version can be stacked.
        locked.base_model = resolved_base
        Repository.objects.filter(pk=locked.repository_id, base_model__isnull=True).update(base_model=resolved_base)
    locked.lease_expires_at = None
    locked.save()
    if not failures:
        version_passed_validation.send(sender=Version, version=locked)
    return locked


def versions_requeue_stale(*, uploaded_after_seconds: int) -> list[int]:
    """Validate again the versions whose task was lost (the broker lost it, or the worker died)."""
    ids = list(Version.objects.filter(
        Q(state=VersionState.UPLOADED, created_at__lt=timezone.now() - timedelta(seconds=uploaded_after_seconds))
        | (Q(state=VersionState.VALIDATING) & lease_expired())
    ).values_list("pk", flat=True))
    for version_id in ids:
        version_uploaded.send(sender=Version, version_id=version_id)
    return ids


def version_record_download(*, version: Version) -> None:
    """Buffered (hub/catalog/download_counts.py): the rows show it after the next flush."""
    count_download("version", version.pk, apply=versions_add_downloads)


def versions_add_downloads(*, counts: Mapping[int, int]) -> None:
    """Add {version id: downloads} to the versions and their repositories."""
    per_repository: dict[int, int] = {}
    for version_id, repository_id in Version.objects.filter(pk__in=counts).values_list("pk", "repository_id"):
        Version.objects.filter(pk=version_id).update(downloads=F("downloads") + counts[version_id])
        per_repository[repository_id] = per_repository.get(repository_id, 0) + counts[version_id]
    for repository_id, added in per_repository.items():
        Repository.objects.filter(pk=repository_id).update(downloads=F("downloads") + added)


def versions_flush_downloads() -> int:
    """Fold the buffered downloads of versions into their rows (the beat's task); how many were folded."""
    return flush_downloads("version", apply=versions_add_downloads)

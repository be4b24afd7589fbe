"""Writes for curation: moderators mark dataset versions curated (each mark and unmark in the audit log), and
users make collections, named ordered lists of adapters and datasets, that only their owner edits."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.accounts.models import User
from hub.audit.services import audit_record
from hub.catalog.models import RepoKind, Repository, Version, VersionState
from hub.catalog.selectors import versions_visible_to
from hub.core.errors import ServiceError
from hub.datareports.models import Collection, CollectionItem, Curation

MAX_COLLECTION_ITEMS = 200


def _moderator(user: User, what: str) -> None:
    if not getattr(user, "is_moderator", False):
        raise ServiceError(f"only moderators can {what}", code="permission_denied", status=403)


def dataset_version_curate(*, version: Version, moderator: User, note: str = "") -> Curation:
    """Mark a published dataset version curated (again: the newest mark counts); audited."""
    _moderator(moderator, "mark a dataset version curated")
    if version.repository.kind != RepoKind.DATASET:
        raise ServiceError(f"{version} is an adapter; only datasets are curated", code="not_a_dataset")
    if version.state != VersionState.PUBLISHED:
        raise ServiceError(f"{version} is {version.get_state_display().lower()}; only a published version can be "
                           "curated", code="not_published", status=409)
    with transaction.atomic():
        curation, _ = Curation.objects.update_or_create(
            version=version, defaults={"curated_by": moderator, "curated_at": timezone.now(), "note": note[:500]})
        audit_record(actor=moderator, action="dataset.curate", target_kind="version", target_id=version.pk,
                     target_label=str(version), after={"curated": True, "note": note[:500]}, reason=note)
    return curation


def dataset_version_uncurate(*, version: Version, moderator: User, reason: str = "") -> None:
    """Take a version's curated mark away; audited. Nothing to take is not an error (idempotent)."""
    _moderator(moderator, "take a curated mark away")
    with transaction.atomic():
        if Curation.objects.filter(version=version).delete()[0]:
            audit_record(actor=moderator, action="dataset.uncurate", target_kind="version", target_id=version.pk,
                         target_label=str(version), before={"curated": True}, after={"curated": False}, reason=reason)


def _repositories(owner: User, refs: Sequence[str]) -> list[Repository]:
    """The repositories named "adapter:owner/name" or "dataset:owner/name" that `owner` may see, in order; one
    they may not see is refused exactly like one that does not exist."""
    if len(refs) > MAX_COLLECTION_ITEMS:
        raise ServiceError(f"items: at most {MAX_COLLECTION_ITEMS}, got {len(refs)}", code="invalid",
                           details={"field": "items"})
    found, visible = [], versions_visible_to(owner)
    for index, ref in enumerate(refs):
        kind, _, full_name = str(ref).partition(":")
        user, _, name = full_name.partition("/")
        repo = Repository.objects.filter(kind=kind, owner__username=user, name=name).first() \
            if kind in RepoKind.values else None
        if repo is None or not visible.filter(repository=repo).exists():
            raise ServiceError(f"items[{index}]: no {kind or 'adapter or dataset'} {full_name or ref!r} on this hub; "
                               "expected \"adapter:owner/name\" or \"dataset:owner/name\"", code="unknown_item",
                               status=404, details={"field": f"items[{index}]"})
        if repo in found:
            raise ServiceError(f"items[{index}]: {ref} is listed twice", code="invalid",
                               details={"field": f"items[{index}]"})
        found.append(repo)
    return found


def _set_items(collection: Collection, repositories: list[Repository]) -> None:
    collection.items.all().delete()
    CollectionItem.objects.bulk_create([CollectionItem(collection=collection, position=i, repository=repo)
                                        for i, repo in enumerate(repositories)])


@transaction.atomic
def collection_create(*, owner: User, name: str, title: str, description: str = "",
                      items: Sequence[str] = ()) -> Collection:
    collection = Collection(owner=owner, name=name, title=title, description=description)
    try:
        collection.full_clean(exclude=["owner"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(f"{field}: {' '.join(messages)}", code="invalid", details={"field": field}) from None
    repositories = _repositories(owner, items)
    try:
        with transaction.atomic():
            collection.save()
    except IntegrityError:
        raise ServiceError(f"you already have a collection named {name}", code="exists", status=409) from None
    _set_items(collection, repositories)
    return collection


def _own(collection: Collection, user: User) -> None:
    if collection.owner_id != user.pk:
        raise ServiceError(f"only {collection.owner.username} can change {collection}", code="permission_denied",
                           status=403)


@transaction.atomic
def collection_update(*, collection: Collection, user: User, title: str | None = None,
                      description: str | None = None, items: Sequence[str] | None = None) -> Collection:
    """Change a collection's title, description or items (replaced in the given order); its owner only."""
    _own(collection, user)
    if title is not None:
        collection.title = title
    if description is not None:
        collection.description = description
    if items is not None:
        _set_items(collection, _repositories(user, items))
    collection.updated_at = timezone.now()
    collection.save()
    return collection


def collection_delete(*, collection: Collection, user: User) -> None:
    _own(collection, user)
    collection.delete()

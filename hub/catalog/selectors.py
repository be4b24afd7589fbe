"""Reads for the catalog, with visibility rules in one place.

Anyone sees published versions. Owners also see their own unpublished ones; moderators see all.
A version taken down by moderation (hidden by reports, or unpublished) answers 404 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from hub.catalog.models import BaseModel, Repository, Version, VersionFile, VersionState

ORDERINGS = {"newest": "-created_at", "downloads": "-downloads", "score": "-score", "name": "name"}


def _can_see_all(user) -> bool:
    return bool(user and user.is_authenticated and getattr(user, "is_moderator", False))


def versions_visible_to(user) -> QuerySet[Version]:
    qs = Version.objects.all()
    if _can_see_all(user):
        return qs
    visible = Q(state=VersionState.PUBLISHED)
    if user and user.is_authenticated:
        visible |= Q(repository__owner=user)
    return qs.filter(visible)


def base_models_all() -> QuerySet[BaseModel]:
    return BaseModel.objects.prefetch_related("files__blob").order_by("name")


def base_model_get(name: str) -> BaseModel:
    try:
        return base_models_all().get(name=name)
    except BaseModel.DoesNotExist:
        raise Http404(f"base model {name} not found") from None


@dataclass(frozen=True)
class RepositoryFilters:
    base_model: str = ""
    tag: str = ""
    task: str = ""
    owner: str = ""
    license: str = ""
    state: str = ""
    search: str = ""
    ordering: str = "newest"


def repositories_visible(user, kind: str, filters: RepositoryFilters | None = None) -> QuerySet[Repository]:
    """Repositories of `kind` with at least one version the user may see, filtered and ordered."""
    filters = filters or RepositoryFilters()
    versions = versions_visible_to(user).filter(repository=OuterRef("pk"))
    if filters.state:
        versions = versions.filter(state=filters.state)
    if filters.tag:
        versions = versions.filter(tags__name=filters.tag.lower())
    if filters.task:
        versions = versions.filter(task=filters.task)
    if filters.license:
        versions = versions.filter(license=filters.license)
    qs = Repository.objects.filter(kind=kind).filter(Exists(versions)).select_related("owner", "base_model")
    if filters.base_model:
        qs = qs.filter(base_model__name=filters.base_model)
    if filters.owner:
        qs = qs.filter(owner__username=filters.owner)
    if filters.search:
        qs = qs.filter(_search_condition(user, filters.search))
    return qs.order_by(ORDERINGS.get(filters.ordering, "-created_at"), "-pk")


def _search_condition(user, text: str) -> Q:
    """Full-text search over names, summaries and visible cards (PostgreSQL's FTS where available)."""
    cards = versions_visible_to(user).filter(repository=OuterRef("pk"))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        query = SearchQuery(text, search_type="websearch", config="english")
        matching = cards.annotate(doc=SearchVector("card_text", config="english")).filter(doc=query)
        by_name = Q(name__icontains=text) | Q(summary__icontains=text)
        return by_name | Q(Exists(matching))
    words = text.split()
    cond = Q()
    for word in words:
        cond &= Q(name__icontains=word) | Q(summary__icontains=word) | Q(Exists(cards.filter(card_text__icontains=word)))
    return cond


def repository_get_visible(user, kind: str, owner: str, name: str) -> Repository:
    repo = (
        Repository.objects.select_related("owner", "base_model")
        .filter(kind=kind, owner__username=owner, name=name)
        .first()
    )
    if repo is None:
        raise Http404(f"{kind} {owner}/{name} not found")
    if not versions_visible_to(user).filter(repository=repo).exists():
        raise Http404(withdrawn_reason(repo.versions.all()) or f"{kind} {owner}/{name} not found")
    return repo


def withdrawn_reason(versions: QuerySet[Version]) -> str | None:
    """Why a version that was public is not any more; pending or rejected versions stay plain "not found"."""
    withdrawn = versions.filter(state=VersionState.UNPUBLISHED).select_related("repository__owner").first()
    return f"{withdrawn} is no longer available: {withdrawn.state_reason}" if withdrawn else None


def versions_of(user, repository: Repository) -> QuerySet[Version]:
    return (
        versions_visible_to(user)
        .filter(repository=repository)
        .select_related("base_model", "created_by")
        .prefetch_related("tags", "files__blob", "training_datasets__owner", "parent_versions__repository__owner")
        .order_by("-number")
    )


def version_get_visible(user, repository: Repository, number: int) -> Version:
    version = versions_of(user, repository).filter(number=number).first()
    if version is None:
        raise Http404(withdrawn_reason(repository.versions.filter(number=number))
                      or f"version {number} of {repository.full_name} not found")
    return version


def version_file_get(version: Version, path: str) -> VersionFile:
    file = version.files.select_related("blob").filter(path=path).first()
    if file is None:
        raise Http404(f"{path} is not a file of {version}")
    return file

"""Reads for the catalog, with visibility rules in one place.

Anyone sees published versions. Owners also see their own unpublished ones; moderators see all.
A version taken down by moderation (hidden by reports, or unpublished) answers 404 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from django.db import connection, models
from django.db.models import Count, Exists, F, FloatField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.http import Http404

from hub.catalog.models import (
    PUBLIC_STATES,
    BaseModel,
    FetchState,
    RepoKind,
    Repository,
    Version,
    VersionFile,
    VersionOrigin,
    VersionState,
)
from hub.core.errors import ServiceError
from hub.core.params import ascii_int

ORDERINGS = {"newest": "-created_at", "downloads": "-downloads", "score": "-score", "name": "name",
             "relevance": "-search_rank"}
# Ties (a new hub where nothing has been downloaded yet) are broken by what the ordering is about, not by age,
# so "popular" and "newest" are different lists from the first day.
TIE_BREAKS = {"downloads": (F("score").desc(nulls_last=True), "name"), "score": ("-downloads", "name")}
ORDERING_LABELS = {"downloads": "Most downloaded", "newest": "Newest", "score": "Best score", "name": "Name"}


# Relations of a Blob that apps above the catalog read for every file entry (hub.provenance registers its torrent,
# `swarm`): loaded with the files, so a listing costs the same number of queries however many files it holds.
BLOB_RELATIONS: list[str] = []


def files_with_blobs(lookup: str, file_model: type[models.Model]) -> Prefetch:
    """Prefetch `lookup` (a relation to file rows: VersionFile, StackFile) with each file's blob and its relations."""
    related = ["blob", *(f"blob__{name}" for name in BLOB_RELATIONS)]
    return Prefetch(lookup, queryset=file_model.objects.select_related(*related))


def _can_see_all(user) -> bool:
    return bool(user and user.is_authenticated and getattr(user, "is_moderator", False))


def published_dataset_version(ref: str) -> Version | None:
    """`owner/name@N`, or `owner/name` for its newest published version; None when no published version matches
    (an unpublished one answers as missing, as everywhere)."""
    name, _, pinned = ref.partition("@")
    owner, _, repo = name.partition("/")
    versions = Version.objects.filter(repository__kind=RepoKind.DATASET, repository__owner__username=owner,
                                      repository__name=repo, state=VersionState.PUBLISHED)
    if pinned:
        number = ascii_int(pinned)
        versions = versions.none() if number is None else versions.filter(number=number)
    return versions.select_related("repository__owner").order_by("-number").first()


def sees_sensitive(user, version: Version) -> bool:
    """The uploader and moderators see what looks like a secret or personal data in a dataset's rows (masked in
    reports); everyone else sees only that something was found."""
    if not (user and user.is_authenticated):
        return False
    return user.pk == version.repository.owner_id or _can_see_all(user)


def versions_visible_to(user, *, listed: bool = False) -> QuerySet[Version]:
    """The versions `user` may see. With `listed`, also those listed from other hubs whose files are held there
    (state `listed`): for the lists, searches and pages; never for what reads a version's files (evaluations,
    stacks, training, data reports), where it is left out for moderators too."""
    qs = Version.objects.all()
    if _can_see_all(user):
        return qs if listed else qs.exclude(state=VersionState.LISTED)
    visible = Q(state__in=PUBLIC_STATES) if listed else Q(state=VersionState.PUBLISHED)
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
    curated: bool | str = ""  # datasets with a version a moderator marked curated (hub.datareports' Curation)
    hub: str = ""  # "local", or the base URL of the hub mirrored items come from (hub.federation)


def repositories_visible(user, kind: str, filters: RepositoryFilters | None = None) -> QuerySet[Repository]:
    """Repositories of `kind` with at least one version the user may see (listed ones included), filtered and
    ordered."""
    filters = filters or RepositoryFilters()
    versions = versions_visible_to(user, listed=True).filter(repository=OuterRef("pk"))
    if filters.state:
        versions = versions.filter(state=filters.state)
    if filters.tag:
        versions = versions.filter(tags__name=filters.tag.lower())
    if filters.task:
        versions = versions.filter(task=filters.task)
    if filters.license:
        versions = versions.filter(license=filters.license)
    if str(filters.curated).lower() in ("true", "1", "yes"):
        versions = versions.filter(curation__isnull=False)
    qs = Repository.objects.filter(kind=kind).filter(Exists(versions))
    if filters.hub == "local":
        qs = qs.filter(origin__isnull=True)
    elif filters.hub:
        qs = qs.filter(origin__hub=filters.hub.strip().rstrip("/").lower())
    if filters.base_model:
        qs = qs.filter(base_model__name=filters.base_model)
    if filters.owner:
        qs = qs.filter(owner__username=filters.owner)
    if filters.search:
        qs = _searched(qs, user, filters.search, ranked=filters.ordering == "relevance")
    else:
        qs = qs.annotate(search_rank=Value(0.0, output_field=FloatField()))  # so `ordering=relevance` always works
    primary = F("score").desc(nulls_last=True) if filters.ordering == "score" else ORDERINGS.get(filters.ordering,
                                                                                                 "-created_at")
    # The stored search document (1-2 kB a row) is matched and ranked in the database, never read by a list
    return (qs.defer("search_document").select_related("owner", "base_model", "origin")
            .annotate(origin_version=Subquery(VersionOrigin.objects.filter(version__repository=OuterRef("pk"))
                                              .order_by("-number").values("number")[:1]))
            .order_by(primary, *TIE_BREAKS.get(filters.ordering, ()), "-pk"))


# Search (PostgreSQL): full-text over each repository's stored document (name A, summary B, published cards D:
# catalog.services.repository_search_refresh, one GIN index), plus trigram word similarity on names so a typo
# ("helpr") still finds "sql-helper" (pg_trgm's `%>`, at its pg_trgm.word_similarity_threshold, 0.6 by default),
# and the text as a substring of a name or summary: one OR over indexes of the repository table (migrations 0003,
# 0005, 0007), which the planner answers by a bitmap of them or by the list's ordering index, stopping at a page.
# Cards only the caller may see besides the published ones (their own, a moderator's) are matched beside it, on
# the cards' index. SQLite: every word as a substring, rank 0.
#
# Ordered by relevance, the rank (ts_rank of the document, half the name's similarity) reads each candidate's
# document, so the candidates are bounded, as a search engine's first phase is: the RANKED_CANDIDATES most
# downloaded matches, and up to as many of the matches by name, in no order (an unknown adapter named for the words
# is not left out by popular cards that mention them; ordering the name matches too would sort all of them, 1,778
# for "chess" at 100,000 adapters). Below that many matches every match is ranked; above it (a word in a fifth of
# such a catalog) the ranked list is those candidates, and every other ordering lists all matches. Both halves stop
# early: on the downloads index, and on the bitmap of the names' trigram and substring indexes.
RANKED_CANDIDATES = 300


def card_document():
    """The cards' tsvector; catalog migration 0003 indexes this very expression."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("card_text", config="english")


def _searched(qs: QuerySet[Repository], user, text: str, ranked: bool) -> QuerySet[Repository]:
    cards = versions_visible_to(user, listed=True).order_by()
    if connection.vendor != "postgresql":
        cond = Q()
        for word in text.split():
            cond &= (Q(name__icontains=word) | Q(summary__icontains=word)
                     | Q(Exists(cards.filter(repository=OuterRef("pk"), card_text__icontains=word))))
        return qs.filter(cond).annotate(search_rank=Value(0.0, output_field=FloatField()))
    from django.contrib.postgres.lookups import TrigramWordSimilar
    from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity

    query = SearchQuery(text, search_type="websearch", config="english")
    by_name = Q(TrigramWordSimilar(F("name"), Value(text))) | Q(name__icontains=text)  # `name %> text`
    matches = Q(search_document=query) | by_name | Q(summary__icontains=text)
    if user and user.is_authenticated:  # the published cards are in the document already
        matches |= Q(pk__in=cards.exclude(state=VersionState.PUBLISHED).alias(doc=card_document())
                     .filter(doc=query).values("repository_id"))
    qs = qs.filter(matches)
    if not ranked:
        return qs.annotate(search_rank=Value(0.0, output_field=FloatField()))
    popular = qs.order_by("-downloads", "-pk").values("pk")[:RANKED_CANDIDATES]
    named = qs.filter(by_name).order_by().values("pk")[:RANKED_CANDIDATES]
    return (Repository.objects.filter(pk__in=popular.union(named))
            .annotate(search_rank=SearchRank(F("search_document"), query) + TrigramWordSimilarity(text, "name") * 0.5))


def repository_get_visible(user, kind: str, owner: str, name: str, *, listed: bool = False) -> Repository:
    repo = (
        Repository.objects.select_related("owner", "base_model")
        .filter(kind=kind, owner__username=owner, name=name)
        .first()
    )
    if repo is None:
        raise Http404(f"{kind} {owner}/{name} not found")
    if not versions_visible_to(user, listed=listed).filter(repository=repo).exists():
        refuse_missing(repo.versions.all(), f"{kind} {owner}/{name} not found")
    return repo


class Gone(ServiceError):
    """A mirrored item its origin hub took down: 410, with the origin's (public) reason."""

    code = "gone"
    status = 410


@dataclass(frozen=True)
class Withdrawal:
    message: str
    gone: bool  # taken down at its origin hub (410); otherwise withdrawn here, answered as missing (404)


def withdrawal_of(versions: QuerySet[Version]) -> Withdrawal | None:
    """Why a version that was public is not any more; pending or rejected versions stay plain "not found"."""
    withdrawn = (versions.filter(state=VersionState.UNPUBLISHED).select_related("repository__owner")
                 .annotate(gone=Exists(VersionOrigin.objects.filter(version=OuterRef("pk"),
                                                                    fetch_state=FetchState.TAKEN_DOWN)))
                 .order_by("-gone", "-number").first())
    if withdrawn is None:
        return None
    return Withdrawal(f"{withdrawn} is no longer available: {withdrawn.state_reason}", withdrawn.gone)


def refuse_missing(versions: QuerySet[Version], missing: str) -> NoReturn:
    """404 naming why a withdrawn version is not served (410 when its origin took it down), else `missing`."""
    withdrawal = withdrawal_of(versions)
    if withdrawal is not None and withdrawal.gone:
        raise Gone(withdrawal.message)
    raise Http404(withdrawal.message if withdrawal else missing)


def origin_of(repository: Repository, version: VersionOrigin | None = None, number: int | None = None) -> dict | None:
    """Where a mirrored item comes from, {hub, url, owner, name, version} (hub.federation mirrors it; the version is
    `version`'s, else `number`); None for the hub's own items."""
    origin = getattr(repository, "origin", None)
    if origin is None:
        return None
    return {"hub": origin.hub, "url": version.object_id if version else origin.url, "owner": origin.owner,
            "name": origin.name, "version": version.number if version else number}


def versions_of(user, repository: Repository, *, listed: bool = False) -> QuerySet[Version]:
    return (
        versions_visible_to(user, listed=listed)
        .filter(repository=repository)
        # str(version) names its repository; the API names a mirrored version's origin
        .select_related("base_model", "created_by", "repository__owner", "repository__origin", "origin")
        .prefetch_related("tags", files_with_blobs("files", VersionFile), "training_datasets__owner",
                          "parent_versions__repository__owner")
        .order_by("-number")
    )


def version_get_visible(user, repository: Repository, number: int, *, listed: bool = False) -> Version:
    version = versions_of(user, repository, listed=listed).filter(number=number).first()
    if version is None:
        refuse_missing(repository.versions.filter(number=number), f"version {number} of {repository.full_name} not found")
    return version


def version_file_get(version: Version, path: str) -> VersionFile:
    file = version.files.select_related("blob").filter(path=path).first()
    if file is None:
        raise Http404(f"{path} is not a file of {version}")
    return file


# --- for the pages -----------------------------------------------------------------------------------------------


def with_card_versions(user, repositories: QuerySet[Repository]) -> QuerySet[Repository]:
    """Each repository with `card_versions`: the newest version the user may see (a list of one), with the fields a
    card shows and its tags (one query for a whole page of cards, whatever its length: the newest per repository
    is chosen in the database, and no card text or report is read)."""
    versions = (versions_visible_to(user, listed=True).only("repository_id", "number", "task", "license")
                .prefetch_related("tags").order_by("-number")[:1])
    return repositories.prefetch_related(Prefetch("versions", queryset=versions, to_attr="card_versions"))


@dataclass(frozen=True)
class Facet:
    value: str
    count: int


def repository_ids(repositories: QuerySet[Repository], limit: int, offset: int = 0) -> list[int]:
    """The primary keys of `limit` of these repositories from `offset` in the list's order: one walk of its index,
    which the browse page reads for its capped count, its facets' sample and the rows of a page."""
    return list(repositories.values_list("pk", flat=True)[offset:offset + limit])


def facets_of(user, repository_ids: list[int]) -> dict[str, list[Facet]]:
    """For the browse sidebar: how many of these repositories (the browse page passes the first COUNT_CAP of its
    list, and says so when the list is longer) come from each hub (once any is mirrored) and have each base model,
    task, license and tag (counted on their visible versions; a handful of GROUP BY queries over the ids, which
    the versions' listing index, migration 0009, answers without reading the versions themselves)."""
    repositories = Repository.objects.filter(pk__in=repository_ids)
    versions = versions_visible_to(user, listed=True).filter(repository_id__in=repository_ids)

    def count(queryset: QuerySet, column: str, limit: int = 30) -> list[Facet]:
        # `> ''`: neither NULL nor empty, as one inner join (an exclude() of a tag would be an anti-join per row)
        rows = (queryset.filter(**{f"{column}__gt": ""}).values(column)
                .annotate(n=Count("repository", distinct=True) if queryset.model is Version else Count("pk"))
                .order_by("-n", column)[:limit])
        return [Facet(row[column], row["n"]) for row in rows]

    hubs = count(repositories, "origin__hub")
    local = repositories.filter(origin__isnull=True).count() if hubs else 0
    return {
        "hub": ([Facet("local", local)] if local else []) + hubs,
        "base_model": count(repositories, "base_model__name"),
        "task": count(versions, "task"),
        "license": count(versions, "license"),
        "tag": count(versions, "tags__name"),
    }


def version_queue_position(version: Version) -> int | None:
    """How many uploads wait to be checked before this one (None once it is being checked or is done)."""
    if version.state != VersionState.UPLOADED:
        return None
    return Version.objects.filter(state=VersionState.UPLOADED, created_at__lt=version.created_at).count()


def repositories_of_owner(user, owner) -> QuerySet[Repository]:
    """A profile's repositories: those with a version the visitor may see."""
    visible = versions_visible_to(user, listed=True).filter(repository=OuterRef("pk"))
    return (Repository.objects.filter(owner=owner).filter(Exists(visible)).select_related("owner", "base_model")
            .order_by("-updated_at", "-pk"))

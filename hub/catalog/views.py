"""Server-rendered pages for browsing the catalog."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hub.catalog import selectors
from hub.catalog.downloads import serve_version_file
from hub.catalog.markdown import render_markdown
from hub.catalog.models import RepoKind, Repository, VersionState


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(request, "catalog/home.html", {
        "base_models": selectors.base_models_all(),
        "popular_adapters": selectors.repositories_visible(user, RepoKind.ADAPTER,
                                                            selectors.RepositoryFilters(ordering="downloads"))[:6],
        "new_adapters": selectors.repositories_visible(user, RepoKind.ADAPTER)[:6],
        "new_datasets": selectors.repositories_visible(user, RepoKind.DATASET)[:6],
    })


def browse(request: HttpRequest, kind: str) -> HttpResponse:
    params = request.GET
    filters = selectors.RepositoryFilters(**{f: params.get(f, "") for f in selectors.RepositoryFilters.__dataclass_fields__})
    if not filters.ordering:
        filters = selectors.RepositoryFilters(**{**filters.__dict__, "ordering": "newest"})
    page = Paginator(selectors.repositories_visible(request.user, kind, filters), 24).get_page(params.get("page"))
    return render(request, "catalog/browse.html", {
        "kind": kind, "page": page, "filters": filters, "base_models": selectors.base_models_all(),
        "orderings": list(selectors.ORDERINGS), "states": VersionState.values,
    })


def repository_detail(request: HttpRequest, kind: str, owner: str, name: str, number: int | None = None) -> HttpResponse:
    repo: Repository = selectors.repository_get_visible(request.user, kind, owner, name)
    versions = list(selectors.versions_of(request.user, repo))
    if number is None:
        version = next((v for v in versions if v.state == VersionState.PUBLISHED), versions[0])
    else:
        version = selectors.version_get_visible(request.user, repo, number)
    return render(request, "catalog/detail.html", {
        "repo": repo, "version": version, "versions": versions, "card_html": render_markdown(version.card_text),
        "is_owner": request.user == repo.owner,
    })


def version_file(request: HttpRequest, kind: str, owner: str, name: str, number: int, path: str) -> HttpResponse:
    repo = selectors.repository_get_visible(request.user, kind, owner, name)
    version = selectors.version_get_visible(request.user, repo, number)
    return serve_version_file(request, version, selectors.version_file_get(version, path))


def base_model_detail(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    base = selectors.base_model_get(f"{owner}/{name}")
    adapters = selectors.repositories_visible(request.user, RepoKind.ADAPTER,
                                              selectors.RepositoryFilters(base_model=base.name))
    return render(request, "catalog/base_model.html", {"base": base, "adapters": adapters[:50]})


@login_required
def upload(request: HttpRequest, kind: str) -> HttpResponse:
    """The form posts to the versions API from the page's script, which shows upload progress."""
    return render(request, "catalog/upload.html", {
        "kind": kind, "base_models": selectors.base_models_all(),
        "own_repositories": Repository.objects.filter(owner=request.user, kind=kind).order_by("name"),
        "preset_name": request.GET.get("name", ""),
    })


def version_status(request: HttpRequest, kind: str, owner: str, name: str, number: int) -> HttpResponse:
    """Follows validation live: the page polls the version's API resource and lists every check."""
    repo = selectors.repository_get_visible(request.user, kind, owner, name)
    version = selectors.version_get_visible(request.user, repo, number)
    return render(request, "catalog/status.html", {"repo": repo, "version": version})

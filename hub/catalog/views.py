"""Server-rendered pages for the catalog: home, faceted browse, adapter and dataset pages, files, uploads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from hub.accounts.models import User
from hub.catalog import check_help, diffs, previews, selectors
from hub.catalog.downloads import serve_listed_file, serve_version_file
from hub.catalog.markdown import render_markdown
from hub.catalog.models import RepoKind, Repository, Version, VersionState
from hub.catalog.validation import ADAPTER_GGUF
from hub.core.formatting import readable_bytes
from hub.core.params import ascii_int

PER_PAGE = 24
COUNT_CAP = 200  # a list's count stops here ("200+"), and its facets count these first ones: one walk of the list, bounded
FACETS = (("hub", "Hub"), ("base_model", "Base model"), ("task", "Task"), ("license", "License"), ("tag", "Tags"))


def home(request: HttpRequest) -> HttpResponse:
    user = request.user

    def cards(kind: str, ordering: str) -> list[Repository]:
        qs = selectors.repositories_visible(user, kind, selectors.RepositoryFilters(ordering=ordering))
        return list(selectors.with_card_versions(user, qs)[:6])

    return render(request, "catalog/home.html", {
        "base_models": selectors.base_models_all(),
        "popular_adapters": cards(RepoKind.ADAPTER, "downloads"),
        "new_adapters": cards(RepoKind.ADAPTER, "newest"),
        "new_datasets": cards(RepoKind.DATASET, "newest"),
    })


def browse(request: HttpRequest, kind: str) -> HttpResponse:
    params = request.GET
    filters = selectors.RepositoryFilters(**{f: params.get(f, "") for f in selectors.RepositoryFilters.__dataclass_fields__})
    if filters.ordering not in selectors.ORDERINGS:  # a search is listed best match first unless a sort is chosen
        default = "relevance" if filters.search and not filters.ordering else "newest"
        filters = replace(filters, ordering="downloads" if params.get("ordering") == "popular" else default)
    repositories = selectors.repositories_visible(request.user, kind, filters)
    first_ids = selectors.repository_ids(repositories, COUNT_CAP + 1)
    page = ListPage.of(selectors.with_card_versions(request.user, repositories), params.get("page", ""), first_ids)
    facets = selectors.facets_of(request.user, first_ids[:COUNT_CAP])
    active = {name: getattr(filters, name) for name, _ in FACETS if getattr(filters, name)}
    return render(request, "catalog/browse.html", {
        "kind": kind, "page": page, "filters": filters,
        "facets": [(name, title, facets[name]) for name, title in FACETS if facets[name] or name in active],
        "active": active, "widen": _widen_hints(request, filters, active),
        "orderings": ({"relevance": "Best match"} if filters.search else {}) | selectors.ORDERING_LABELS,
    })


@dataclass(frozen=True)
class ListPage:
    """A page of a list that is never counted in full: one row more than a page says whether another follows, and
    the count stops at COUNT_CAP (`count_capped`), found in the same walk of the list as the facets' sample."""

    number: int
    object_list: list
    has_next: bool
    count: int

    @classmethod
    def of(cls, queryset, number: str, first_ids: list[int]) -> ListPage:
        """Page `number` of `queryset`, given `first_ids`: the primary keys of its first COUNT_CAP + 1 rows in order
        (selectors.repository_ids), which are its count and, on the pages they cover, its rows' ids; the rows are read by
        key."""
        page = max(ascii_int(number) or 1, 1)
        start, stop = (page - 1) * PER_PAGE, page * PER_PAGE + 1
        if stop <= len(first_ids) or len(first_ids) <= COUNT_CAP:  # first_ids cover this page (or the whole list)
            ids = first_ids[start:stop]
        else:  # deeper: an OFFSET in the list's own order, of its ids only (no joins or annotations for the skipped)
            ids = selectors.repository_ids(queryset, stop - start, offset=start)
        by_id = {row.pk: row for row in queryset.filter(pk__in=ids).order_by()} if ids else {}
        rows = [by_id[pk] for pk in ids if pk in by_id]
        if not rows and page > 1:  # past the end (the list shrank, or a made-up number): its first page
            return cls.of(queryset, "1", first_ids)
        return cls(page, rows[:PER_PAGE], len(rows) > PER_PAGE, len(first_ids))

    @property
    def count_capped(self) -> bool:
        return self.count > COUNT_CAP

    @property
    def shown_count(self) -> int:
        return min(self.count, COUNT_CAP)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def _widen_hints(request: HttpRequest, filters: selectors.RepositoryFilters, active: dict[str, str]) -> list[tuple[str, str]]:
    """When nothing matched: (label, url) for each filter to drop, and the search alone."""
    hints = []
    for name, value in active.items():
        query = request.GET.copy()
        query.pop(name, None)
        query.pop("page", None)
        hints.append((f"without {name.replace('_', ' ')} “{value}”", "?" + query.urlencode()))
    if filters.search and active:
        hints.append((f"only the search “{filters.search}”", "?" + urlencode({"search": filters.search})))
    return hints


def repository_detail(request: HttpRequest, kind: str, owner: str, name: str, number: int | None = None) -> HttpResponse:
    repo: Repository = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
    versions = list(selectors.versions_of(request.user, repo, listed=True))
    if number is None:
        version = next((v for v in versions if v.is_public), versions[0])
    else:
        version = selectors.version_get_visible(request.user, repo, number, listed=True)
    files = list(version.files.all())
    context = {
        "repo": repo, "version": version, "versions": versions, "card_html": render_markdown(version.card_text),
        "is_owner": request.user == repo.owner, "files": [(f, previews.is_viewable(f)) for f in files],
        "stats": _stats_for_page(version.stats), "about": version.stats,
        "total_bytes": sum(f.blob.size for f in files), "gguf": next((f for f in files if f.path == ADAPTER_GGUF), None),
        "previous": next((v for v in versions if v.number < version.number), None),
    }
    if version.is_listed:  # its files are at its origin: nothing to use, preview or evaluate here yet
        context["listed_files"] = version.origin.listed_files
        context["total_bytes"] = sum(f["size"] for f in context["listed_files"])
    elif kind == RepoKind.ADAPTER:
        context["usage"] = _usage(request, repo, version, context["gguf"])
    else:
        context["rows"] = _rows_for_page(request, version, files)
        context["endpoint"] = request.build_absolute_uri("/").rstrip("/")
    return render(request, "catalog/detail.html", context)


def _stats_for_page(stats: dict) -> dict:
    """The stats a person reads, without the ones shown elsewhere (preview rows, per-file details, the About box's
    rank, alpha and targets); sizes in bytes as sizes."""
    hidden = {"preview", "files", "base_model", "license", "rank", "alpha", "target_modules", "tags", "task", "datasets"}
    shown = {k: readable_bytes(v) if k.endswith("_bytes") and isinstance(v, int) else v
             for k, v in stats.items() if k not in hidden}
    norms = shown.pop("delta_norms", None)
    if isinstance(norms, dict):  # per-module norms: the summary, and the largest few modules
        per_module = {k: v for k, v in norms.items() if isinstance(v, int | float)}
        nested = {k: v for k, v in norms.items() if not isinstance(v, int | float)}
        if per_module:
            top = sorted(per_module.items(), key=lambda item: -abs(item[1]))[:5]
            shown["largest_update_norms"] = dict(top)
            shown["modules_with_updates"] = len(per_module)
        shown.update({f"delta_{k}": v for k, v in nested.items()})
    return shown


def _usage(request: HttpRequest, repo: Repository, version: Version, gguf) -> dict:
    endpoint = request.build_absolute_uri("/").rstrip("/")
    base = version.base_model.name if version.base_model else "BASE_MODEL"
    stack_url = reverse("stack-builder") + "?" + urlencode({"base_model": base, "add": repo.full_name})
    gguf_url = request.build_absolute_uri(reverse("adapter-file-page", args=[repo.owner.username, repo.name,
                                                                            version.number, gguf.path])) if gguf else ""
    return {"endpoint": endpoint, "base": base, "revision": f"v{version.number}", "stack_url": stack_url,
            "gguf_url": gguf_url, "base_page": reverse("base-model", args=version.base_model.owner_name)
            if version.base_model else ""}


def _rows_for_page(request: HttpRequest, version: Version, files) -> dict | None:
    splits = previews.data_files(files)
    if not splits:
        return None
    chosen = request.GET.get("split", splits[0][0])
    by_path = {f.path: f for f in files}
    if chosen not in dict(splits):
        chosen = splits[0][0]
    try:
        number = int(request.GET.get("rows", "1"))
    except ValueError:
        number = 1
    totals = version.stats.get("files", {}) if isinstance(version.stats, dict) else {}
    total = totals.get(chosen, {}).get("rows") if isinstance(totals.get(chosen), dict) else None
    page = previews.row_page(by_path[chosen], dict(splits)[chosen], number, total,
                             reveal_secrets=selectors.sees_sensitive(request.user, version))
    return {"splits": splits, "page": page}


def version_file(request: HttpRequest, kind: str, owner: str, name: str, number: int, path: str) -> HttpResponse:
    """A small text file is shown in the page (highlighted); anything else, or `?download=1`, downloads."""
    repo = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
    version = selectors.version_get_visible(request.user, repo, number, listed=True)
    if version.is_listed:
        return serve_listed_file(version, path)
    file = selectors.version_file_get(version, path)
    if request.GET.get("download") or request.method != "GET" or not previews.is_viewable(file):
        return serve_version_file(request, version, file)
    return render(request, "catalog/file.html", {"repo": repo, "version": version, "file": file,
                                                 "view": previews.text_view(file)})


def version_diff(request: HttpRequest, kind: str, owner: str, name: str, a: int, b: int) -> HttpResponse:
    """Version `a` → version `b`: card, text files line by line, every file by sha256 and size (either one hidden
    from the visitor answers 404, as a missing one does)."""
    repo = selectors.repository_get_visible(request.user, kind, owner, name)
    older, newer = (selectors.version_get_visible(request.user, repo, number) for number in (a, b))
    return render(request, "catalog/diff.html", {"repo": repo, "diff": diffs.versions_compare(older, newer)})


def base_model_detail(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    base = selectors.base_model_get(f"{owner}/{name}")
    adapters = selectors.repositories_visible(request.user, RepoKind.ADAPTER,
                                              selectors.RepositoryFilters(base_model=base.name, ordering="downloads"))
    return render(request, "catalog/base_model.html", {
        "base": base, "adapters": list(selectors.with_card_versions(request.user, adapters)[:48]),
        "adapter_count": adapters.count(), "files": list(base.files.select_related("blob")),
        "config": {k: v for k, v in base.config.items() if isinstance(v, str | int | float | bool)},
    })


@login_required
def upload(request: HttpRequest, kind: str) -> HttpResponse:
    """The form posts to the versions API from the page's script, which shows upload progress."""
    return render(request, "catalog/upload.html", {
        "kind": kind, "base_models": selectors.base_models_all(),
        "own_repositories": Repository.objects.filter(owner=request.user, kind=kind).order_by("name"),
        "preset_name": request.GET.get("name", ""), "preset_base": request.GET.get("base_model", ""),
    })


def version_status(request: HttpRequest, kind: str, owner: str, name: str, number: int) -> HttpResponse:
    """Follows validation live: the page re-fetches its status fragment (`?fragment=1`) until the version settles."""
    repo = selectors.repository_get_visible(request.user, kind, owner, name)
    version = selectors.version_get_visible(request.user, repo, number)
    lines = check_help.checks_for_people(version.validation_report or {})
    context = {
        "repo": repo, "version": version, "checks": [line for line in lines if line.status != "skipped"],
        "skipped": [line for line in lines if line.status == "skipped"],
        "failed_count": sum(line.status == "failed" for line in lines),
        "stages": check_help.stages_of(version.state), "queue_position": selectors.version_queue_position(version),
        "settled": version.state not in (VersionState.UPLOADED, VersionState.VALIDATING),
        "is_owner": request.user == repo.owner,
    }
    if request.GET.get("fragment"):
        return render(request, "catalog/_status_live.html", context)
    return render(request, "catalog/status.html", context)


def user_page(request: HttpRequest, username: str) -> HttpResponse:
    """A public profile: the person's adapters and datasets the visitor may see."""
    owner = get_object_or_404(User, username=username, is_active=True)
    repositories = list(selectors.with_card_versions(request.user, selectors.repositories_of_owner(request.user, owner))[:60])
    return render(request, "accounts/user.html", {
        "owner": owner, "adapters": [r for r in repositories if r.kind == "adapter"],
        "datasets": [r for r in repositories if r.kind == "dataset"], "is_self": request.user == owner,
    })

"""Pages of curation: the moderators' curate button (the dataset page shows the report and the mark through
templates/catalog/main/data_report.html) and collections."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hub.catalog.models import RepoKind
from hub.catalog.selectors import repository_get_visible, version_get_visible
from hub.datareports.curation import dataset_version_curate, dataset_version_uncurate
from hub.datareports.selectors import collection_get, collection_items_visible, collections_listed


@login_required
@require_POST
def curate(request: HttpRequest, owner: str, name: str, number: int) -> HttpResponse:
    """Mark or unmark (`action=uncurate`) a dataset version curated; the services refuse anyone but moderators."""
    version = version_get_visible(request.user, repository_get_visible(request.user, RepoKind.DATASET, owner, name),
                                  number)
    note = request.POST.get("note", "")
    if request.POST.get("action") == "uncurate":
        dataset_version_uncurate(version=version, moderator=request.user, reason=note)
    else:
        dataset_version_curate(version=version, moderator=request.user, note=note)
    return HttpResponseRedirect(reverse("dataset-version-page", args=[owner, name, number]))


def collections_page(request: HttpRequest) -> HttpResponse:
    return render(request, "datareports/collections.html", {"collections": collections_listed()[:100]})


def collection_page(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    collection = collection_get(owner, name)
    return render(request, "datareports/collection.html", {
        "collection": collection, "items": collection_items_visible(request.user, collection)})

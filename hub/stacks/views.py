"""Stack pages: the list of popular stacks, the stack builder, and a stack's page with live progress."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hub.catalog.selectors import base_models_all
from hub.stacks import selectors
from hub.stacks.downloads import serve_stack_file
from workers.engine.methods import GTA_PRESETS, METHOD_SCHEMAS
from workers.engine.outputs import OUTPUT_DTYPES, OUTPUT_KINDS


def stack_list(request: HttpRequest) -> HttpResponse:
    return render(request, "stacks/list.html", {
        "stacks": selectors.stacks_listed(base_model=request.GET.get("base_model", ""),
                                          adapter=request.GET.get("adapter", ""),
                                          ordering=request.GET.get("ordering", "popular"))[:100],
        "base_models": base_models_all(), "filters": request.GET,
    })


def stack_builder(request: HttpRequest) -> HttpResponse:
    """Everything the page's script needs comes from the API; the methods and outputs come from the engine."""
    return render(request, "stacks/builder.html", {
        "base_models": base_models_all(),
        "methods": list(METHOD_SCHEMAS),
        "sparse_methods": [name for name, preset in GTA_PRESETS.items() if preset["sparsify"] != "none"],
        "outputs": list(OUTPUT_KINDS), "dtypes": OUTPUT_DTYPES,
        "preset_base": request.GET.get("base_model", ""), "preset_adapter": request.GET.get("add", ""),
    })


def stack_page(request: HttpRequest, recipe_hash: str) -> HttpResponse:
    build = selectors.stack_get_visible(request.user, recipe_hash)
    return render(request, "stacks/detail.html", {"build": build,
                                                  "withdrawn_reason": selectors.stack_withdrawn_reason(build)})


def stack_file(request: HttpRequest, recipe_hash: str, path: str) -> HttpResponse:
    return serve_stack_file(request, selectors.stack_get(recipe_hash), path)

"""Stack pages: the list of popular stacks, the stack builder, and a stack's page with live progress."""

from __future__ import annotations

import yaml
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hub.catalog.selectors import base_models_all
from hub.stacks import selectors
from hub.stacks.downloads import serve_stack_file
from workers.engine.methods import METHODS
from workers.engine.outputs import OUTPUT_DTYPES, OUTPUT_KINDS
from workers.engine.recipe_schema import StackRecipeIn


def stack_list(request: HttpRequest) -> HttpResponse:
    stacks = selectors.stacks_listed(base_model=request.GET.get("base_model", ""), adapter=request.GET.get("adapter", ""),
                                     ordering=request.GET.get("ordering", "popular"))[:100]
    return render(request, "stacks/list.html", {
        "stacks": [(build, build.display_name) for build in stacks],
        "base_models": base_models_all(), "filters": request.GET,
    })


# What each output is, in a line, for the builder and the stack page.
OUTPUT_HELP = {
    "merged": "a full model with the stack merged into its weights (safetensors, for transformers)",
    "adapter": "one PEFT LoRA adapter holding the whole stack (small; load it on the base model)",
    "gguf-f16": "a GGUF model for llama.cpp, 16-bit (largest, closest to the merged weights)",
    "gguf-q8_0": "a GGUF model for llama.cpp, 8-bit (about half the f16 size, nearly lossless)",
    "gguf-q6_k": "a GGUF model for llama.cpp, 6-bit k-quant",
    "gguf-q5_k_m": "a GGUF model for llama.cpp, 5-bit k-quant (a common size/quality balance)",
    "gguf-q4_k_m": "a GGUF model for llama.cpp, 4-bit k-quant (small, runs on laptops and phones)",
    "gguf-q4_0": "a GGUF model for llama.cpp, plain 4-bit (smallest, fastest, loses the most)",
    "runtime": "the base GGUF plus one GGUF LoRA per adapter, stacked by llama.cpp at run time (linear only)",
}


def method_catalog() -> list[dict]:
    """Each method as the builder page's script reads it (a json_script): what it does, its parameters,
    whether an adapter output holds it exactly (low_rank), and the outputs it cannot be built into."""
    return [{"name": m.name, "description": m.description, "low_rank": m.low_rank,
             "unsupported_outputs": sorted(m.unsupported_outputs),
             "params": [{"name": name, "description": p.description, "required": p.required,
                         "default": None if p.required else p.default} for name, p in m.params.items()]}
            for m in METHODS.values()]


def stack_builder(request: HttpRequest) -> HttpResponse:
    """Everything the page's script needs comes from the API; the methods and outputs come from the engine."""
    return render(request, "stacks/builder.html", {
        "base_models": base_models_all(),
        "methods": list(METHODS),
        "sparse_methods": [m.name for m in METHODS.values() if "density" in m.params],
        "method_catalog": method_catalog(),
        "recipe_schema": StackRecipeIn.model_json_schema(),  # the request the page posts, as JSON schema
        "outputs": list(OUTPUT_KINDS), "dtypes": OUTPUT_DTYPES, "output_help": OUTPUT_HELP,
        "param_help": {name: p.description for m in METHODS.values() for name, p in m.params.items()},
        "preset_base": request.GET.get("base_model", ""), "preset_adapter": request.GET.get("add", ""),
    })


def stack_page(request: HttpRequest, recipe_hash: str) -> HttpResponse:
    """The build's progress is a fragment (`?fragment=1`) the page re-fetches until the build is ready or failed."""
    build = selectors.stack_get_visible(request.user, recipe_hash)
    if request.GET.get("fragment"):
        return render(request, "stacks/_build_live.html", {"build": build})
    return render(request, "stacks/detail.html", {
        "build": build, "withdrawn_reason": selectors.stack_withdrawn_reason(build), "name": build.display_name,
        "recipe_yaml": recipe_yaml(build.request),
        "endpoint": request.build_absolute_uri("/").rstrip("/"), "output_help": OUTPUT_HELP.get(build.output, ""),
    })


RECIPE_ORDER = ("base_model", "adapters", "method", "output")
ADAPTER_ORDER = ("adapter", "version", "weight")


def recipe_yaml(request: dict) -> str:
    """The recipe as a person writes it (base model, adapters, method, output), whatever order the database kept."""
    def ordered(mapping: dict, keys: tuple[str, ...]) -> dict:
        return {**{k: mapping[k] for k in keys if k in mapping}, **{k: v for k, v in mapping.items() if k not in keys}}

    recipe = ordered(request, RECIPE_ORDER)
    if isinstance(recipe.get("adapters"), list):
        recipe["adapters"] = [ordered(a, ADAPTER_ORDER) if isinstance(a, dict) else a for a in recipe["adapters"]]
    return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).strip()


def stack_file(request: HttpRequest, recipe_hash: str, path: str) -> HttpResponse:
    return serve_stack_file(request, selectors.stack_get(recipe_hash), path)

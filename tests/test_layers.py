"""The import graph the README's "Layers" paragraph promises: no cycles, a pure engine, apps importing only downward.

Read with grimp (import-linter's graph library) from the source, so a new upward import fails here, naming its chain.
"""

from __future__ import annotations

import grimp
import pytest

# Bottom to top. `hub.api` is the API's shared pieces (errors, pagination, schema); its URL map, like hub.urls and
# hub.pages, sits above every app and is left out.
LAYERS = ["hub.core", "hub.audit", "hub.api", "hub.accounts", "hub.catalog", "hub.hfcompat", "hub.stacks",
          "hub.oci", "hub.provenance", "hub.datareports", "hub.evals", "hub.training", "hub.moderation", "hub.federation"]
TOP = {"hub.api.urls", "hub.urls", "hub.pages"}
FRAMEWORKS = ("hub", "django", "celery", "rest_framework", "drf_spectacular")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    graph = grimp.build_graph("hub", "workers", "nomoat_cli", include_external_packages=True)
    for module in TOP:
        graph.remove_module(module)
    return graph


def test_the_engine_imports_neither_the_hub_nor_a_framework(graph):
    engine = graph.find_descendants("workers") | {"workers"}
    wrong = sorted(f"{module} -> {imported}" for module in engine
                   for imported in graph.find_modules_directly_imported_by(module)
                   if imported.split(".")[0] in FRAMEWORKS)
    assert wrong == []


def test_the_cli_talks_to_the_hub_only_over_http(graph):
    cli = graph.find_descendants("nomoat_cli") | {"nomoat_cli"}
    assert sorted(f"{m} -> {i}" for m in cli for i in graph.find_modules_directly_imported_by(m)
                  if i.split(".")[0] in FRAMEWORKS) == []


def test_apps_import_only_the_layers_below_them(graph):
    upward = [" -> ".join(chain) for low, lower in enumerate(LAYERS) for higher in LAYERS[low + 1:]
              for chain in graph.find_shortest_chains(importer=lower, imported=higher, as_packages=True)]
    assert upward == []


def test_no_module_is_in_an_import_cycle(graph):
    ours = {m for m in graph.modules if m.split(".")[0] in ("hub", "workers", "nomoat_cli")}
    cycles = {tuple(sorted({m, *chain})) for m in ours for imported in graph.find_modules_directly_imported_by(m)
              if imported in ours and (chain := graph.find_shortest_chain(importer=imported, imported=m))}
    assert sorted(cycles) == []

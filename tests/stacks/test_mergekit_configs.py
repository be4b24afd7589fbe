"""mergekit configs whose models are `base+adapter` LoRAs build the stack they describe (POST /api/v1/stacks as
YAML or JSON, and `nomoat stack build`), and a config the hub cannot honour is refused naming its field."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.stacks.models import StackBuild
from nomoat_cli.recipes import RecipeError, recipe_from_dict

TIES_CONFIG = """\
merge_method: ties
base_model: nomoat/tiny-llama
models:
  - model: nomoat/tiny-llama            # the base itself, as mergekit configs list it: adds no delta
  - model: nomoat/tiny-llama+alice/sql
    parameters: {weight: 0.7, density: 0.5}
  - model: nomoat/tiny-llama+alice/poet
    parameters: {weight: 0.4, density: 0.5}
parameters: {normalize: true}
dtype: float32
"""
THE_SAME_STACK = {"base_model": "nomoat/tiny-llama",
                  "adapters": [{"adapter": "alice/sql", "weight": 0.7}, {"adapter": "alice/poet", "weight": 0.4}],
                  "method": {"name": "ties", "params": {"density": 0.5, "normalize": True}},
                  "output": {"type": "merged", "dtype": "fp32"}}


def writer(user) -> APIClient:
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='w', scope='write').raw}"})


@pytest.fixture
def alice(make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    publish_adapter(alice, "poet", rank=4, alpha=8, target_modules=("q_proj",), seed=12)
    return alice


@pytest.mark.django_db(transaction=True)
def test_a_mergekit_yaml_builds_the_stack_it_describes(celery_worker, alice):
    from tests.stacks.test_stacks_api import wait_ready

    client = writer(alice)
    response = client.post("/api/v1/stacks", TIES_CONFIG, content_type="application/yaml")
    assert response.status_code == 202, response.content
    build = StackBuild.objects.get()
    assert build.method == "ties" and build.recipe["method"]["params"]["density"] == 0.5
    assert [(a["ref"], a["weight"]) for a in build.recipe["adapters"]] == [("alice/sql@1", 0.7), ("alice/poet@1", 0.4)]
    # Our own recipe for the same stack is the same build (one recipe hash), not a second one.
    same = client.post("/api/v1/stacks", THE_SAME_STACK, format="json")
    assert same.json()["recipe_hash"] == build.recipe_hash and StackBuild.objects.count() == 1
    stack = wait_ready(client, response.json()["url"])
    assert stack["state"] == "ready", stack["failure_reason"]
    assert any(f["path"].endswith(".safetensors") for f in stack["files"])


@pytest.mark.django_db
def test_mergekit_linear_normalizes_the_weights_as_mergekit_does(alice):
    config = {"merge_method": "linear", "models": [
        {"model": "nomoat/tiny-llama+alice/sql", "parameters": {"weight": 3}},
        {"model": "nomoat/tiny-llama+alice/poet", "parameters": {"weight": 1}}]}
    response = writer(alice).post("/api/v1/stacks", config, format="json")
    assert response.status_code == 202, response.content
    recipe = StackBuild.objects.get().recipe
    assert recipe["method"]["name"] == "linear"  # W0 + Σ (w_i / Σ w) ΔW_i: mergekit's normalized linear
    assert [a["weight"] for a in recipe["adapters"]] == [0.75, 0.25]


@pytest.mark.django_db
@pytest.mark.parametrize(("config", "field", "fragment"), [
    ("merge_method: slerp\nmodels: [{model: nomoat/tiny-llama+alice/sql}]\n", "merge_method", "no counterpart"),
    ("merge_method: ties\nmodels: [{model: nomoat/tiny-llama+alice/sql}]\n", "models[0].parameters.weight",
     "is required"),
    ("merge_method: ties\nmodels:\n  - {model: nomoat/tiny-llama+alice/sql, parameters: {weight: 1, density: 0.5}}\n"
     "  - {model: other/base+alice/poet, parameters: {weight: 1, density: 0.5}}\n", "models[1].model", "one base"),
    ("merge_method: ties\nmodels:\n  - {model: nomoat/tiny-llama+alice/sql, parameters: {weight: 1, density: 0.5}}\n"
     "  - {model: nomoat/tiny-llama+alice/poet, parameters: {weight: 1, density: 0.7}}\n",
     "models[1].parameters.density", "same density"),
    ("merge_method: ties\nmodels: [{model: nomoat/tiny-llama+alice/sql, parameters: {weight: 500, density: 0.5}}]\n",
     "models[0].parameters.weight", "out of range"),
    ("merge_method: ties\nmodels: [{model: nomoat/tiny-llama+alice, parameters: {weight: 1}}]\n", "models[0].model",
     "owner/name"),
    ("merge_method: linear\nmodels: [{model: nomoat/tiny-llama+alice/sql, parameters: {weight: 1}}]\n"
     "slices: []\n", "", "slices: unknown key"),
    ("merge_method: ties\nmodels: [{model: nomoat/tiny-llama+alice/sql, parameters: {weight: 1}}]\n",
     "method.params.density", "is required"),
    ("merge_method: ties\nmodels: [{model: nomoat/tiny-llama+alice/nope, parameters: {weight: 1, density: 0.5}}]\n",
     "adapters[0]", "no published adapter alice/nope"),
    ("merge_method: linear\nmodels: [{model: nomoat/tiny-llama+alice/sql, parameters: {weight: 1}}]\n"
     "tokenizer_source: union\n", "tokenizer_source", "only \"base\""),
])
def test_a_bad_mergekit_config_is_refused_naming_the_field(alice, config, field, fragment):
    response = writer(alice).post("/api/v1/stacks", config, content_type="application/yaml")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_recipe" and error["details"]["field"] == field, error
    assert fragment in error["message"] and error["message"].startswith(f"{field}: " if field else fragment), error
    assert not StackBuild.objects.exists()


@pytest.mark.django_db
def test_yaml_that_is_not_a_plain_document_is_refused(alice):
    client = writer(alice)
    bomb = 'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n'
    refused = client.post("/api/v1/stacks", bomb, content_type="application/yaml")
    assert refused.status_code == 400 and "aliases" in refused.json()["error"]["message"]
    broken = client.post("/api/v1/stacks", "merge_method: [unclosed", content_type="application/yaml")
    assert broken.status_code == 400 and "YAML parse error at line 1" in broken.json()["error"]["message"]


def test_the_cli_reads_a_mergekit_config_as_the_same_recipe():
    config = {"merge_method": "ties", "base_model": "nomoat/tiny-llama",
              "models": [{"model": "nomoat/tiny-llama"},
                         {"model": "nomoat/tiny-llama+alice/sql", "parameters": {"weight": 0.7, "density": 0.5}},
                         {"model": "nomoat/tiny-llama+alice/poet", "parameters": {"weight": 0.4, "density": 0.5}}],
              "parameters": {"normalize": True}, "dtype": "float32"}
    assert recipe_from_dict(config) == THE_SAME_STACK
    with pytest.raises(RecipeError, match=r"^mk\.yaml: models\[0\]\.parameters\.weight: is required"):
        recipe_from_dict({"merge_method": "ties", "models": [{"model": "b+alice/sql"}]}, source="mk.yaml")

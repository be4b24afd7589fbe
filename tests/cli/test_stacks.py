"""`nomoat stack build`, `stack show` and `pull recipe.yaml` with a real worker; recipe errors from the hub."""

from __future__ import annotations

import re

import pytest
import torch

from hub.stacks.models import StackBuild
from nomoat_cli.errors import ExitCode
from tests.cli.conftest import write_token

pytestmark = pytest.mark.django_db(transaction=True)

RECIPE = """\
base_model: nomoat/tiny-llama
adapters:
  - adapter: alice/sql
    weight: 0.7
  - adapter: bob/poet@1
    weight: 0.5
method: ties
parameters:
  density: 0.5
output: merged
dtype: fp32
"""


def test_stack_build_delivers_a_gguf_a_user_can_run(cli, celery_worker, make_user, publish_adapter):
    from workers.engine.llama_runtime import LlamaRuntime

    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    (cli.cwd / "recipe.yaml").write_text("base_model: nomoat/tiny-llama\nadapters:\n  - alice/sql\n")
    result = cli.run("stack", "build", "recipe.yaml", "--output", "gguf-q8_0", "-o", "gguf", token=write_token(alice))
    assert result.returncode == 0, result.stderr
    [gguf] = list((cli.cwd / "gguf").glob("*.gguf"))
    assert gguf.name == "model-q8_0.gguf"
    with LlamaRuntime(gguf) as runtime:
        assert len(runtime.greedy(runtime.tokenize("def main():"), 6)) == 6


def test_stack_build_downloads_a_merged_model_that_transformers_loads(cli, celery_worker, make_user,
                                                                       publish_adapter):
    from transformers import AutoModelForCausalLM

    alice, bob = make_user("alice"), make_user("bob")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    publish_adapter(bob, "poet", rank=8, alpha=8, target_modules=("q_proj", "down_proj"), seed=12)
    (cli.cwd / "recipe.yaml").write_text(RECIPE)
    token = write_token(alice)

    result = cli.run("stack", "build", "recipe.yaml", "-o", "merged", token=token)
    assert result.returncode == 0, result.stderr
    build = StackBuild.objects.get()
    assert f"stack {build.recipe_hash}" in result.stdout and "sha256 verified" in result.stdout
    assert "100.0%" in result.stderr  # the build's progress, followed to the end
    assert build.method == "ties" and build.recipe["method"]["params"]["density"] == 0.5
    assert build.recipe["output"]["dtype"] == "fp32"
    model = AutoModelForCausalLM.from_pretrained(cli.cwd / "merged", dtype=torch.float32)
    ids = torch.tensor([[1, 17, 99, 250, 3]])
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3

    show = cli.run("stack", "show", build.recipe_hash)
    assert show.returncode == 0, show.stderr
    assert build.recipe_hash in show.stdout and "ready" in show.stdout and "density=0.5" in show.stdout
    assert "alice/sql" in show.stdout and "bob/poet" in show.stdout and "model.safetensors" in show.stdout

    # The same recipe, pulled: the hub answers at once with the shared build; the files are already in place.
    pulled = cli.run("pull", "recipe.yaml", "-o", "merged", token=write_token(bob))
    assert pulled.returncode == 0, pulled.stderr
    assert f"stack {build.recipe_hash}: ready" in pulled.stdout
    # Every file of the first download is in place (the stack's evaluations may have attested since: one more file).
    first_download = int(re.search(r"(\d+) files \(", result.stdout)[1])
    assert f"{first_download} already there" in pulled.stdout
    assert StackBuild.objects.get().request_count == 2


def test_a_recipe_the_hub_refuses_exits_2_with_its_reason(cli, make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    (cli.cwd / "recipe.yaml").write_text("base_model: nomoat/tiny-llama\nadapters: [alice/sql]\nmethod: ties\n")
    result = cli.run("stack", "build", "recipe.yaml", token=write_token(alice))
    assert result.returncode == ExitCode.API
    assert result.stderr.strip() == "nomoat: error: method.params.density: is required"
    (cli.cwd / "recipe.yaml").write_text("base_model: nomoat/tiny-llama\nadapters: [alice/sql]\n")
    unknown = cli.run("stack", "build", "recipe.yaml", "--output", "onnx", token=write_token(alice))
    assert unknown.returncode == ExitCode.API and "output.type: unknown output type" in unknown.stderr
    missing = cli.run("stack", "show", "0" * 64)
    assert missing.returncode == ExitCode.API and len(missing.stderr.strip().splitlines()) == 1


MERGEKIT_CONFIG = """\
merge_method: ties
base_model: nomoat/tiny-llama
models:
  - model: nomoat/tiny-llama+alice/sql
    parameters: {weight: 0.7, density: 0.5}
  - model: nomoat/tiny-llama+bob/poet@1
    parameters: {weight: 0.5, density: 0.5}
dtype: float32
"""


def test_stack_build_reads_a_mergekit_config_as_the_same_stack(cli, celery_worker, make_user, publish_adapter):
    alice, bob = make_user("alice"), make_user("bob")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    publish_adapter(bob, "poet", rank=8, alpha=8, target_modules=("q_proj", "down_proj"), seed=12)
    (cli.cwd / "mergekit.yaml").write_text(MERGEKIT_CONFIG)
    result = cli.run("stack", "build", "mergekit.yaml", "-o", "merged", token=write_token(alice))
    assert result.returncode == 0, result.stderr
    build = StackBuild.objects.get()
    assert build.method == "ties" and build.recipe["method"]["params"]["density"] == 0.5
    assert [(a["ref"], a["weight"]) for a in build.recipe["adapters"]] == [("alice/sql@1", 0.7), ("bob/poet@1", 0.5)]
    assert build.recipe["output"] == {"type": "merged", "dtype": "fp32", "max_shard_bytes": 5_000_000_000}
    assert (cli.cwd / "merged" / "model.safetensors").is_file()
    # Our own recipe for it is the same build: the hub answers at once.
    (cli.cwd / "recipe.yaml").write_text(RECIPE)
    again = cli.run("stack", "build", "recipe.yaml", "-o", "again", token=write_token(bob))
    assert again.returncode == 0 and f"stack {build.recipe_hash}" in again.stdout, again.stderr
    assert StackBuild.objects.count() == 1

"""GGUF stack outputs through the API with a real worker: verified files llama.cpp loads, and the runtime bundle."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from tests.stacks.test_stacks_api import download, wait_ready

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_adapters(make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "k_proj", "v_proj"), seed=41)
    publish_adapter(alice, "poet", rank=4, alpha=8, target_modules=("o_proj", "up_proj"), seed=42)
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})


def build(client: APIClient, output: str, method: str = "linear") -> dict:
    recipe = {"base_model": "nomoat/tiny-llama", "method": method, "output": output,
              "adapters": [{"adapter": "alice/sql", "weight": 0.8}, {"adapter": "alice/poet", "weight": 0.5}]}
    created = client.post("/api/v1/stacks", recipe, format="json")
    assert created.status_code in {200, 202}, created.content
    return wait_ready(client, created.json()["url"], timeout=300)


def test_a_quantized_gguf_is_verified_and_loads_in_llama_cpp(celery_worker, two_adapters, tmp_path):
    from workers.engine.llama_runtime import LlamaRuntime

    stack = build(two_adapters, "gguf-q8_0")
    assert stack["state"] == "ready", (stack["failure_reason"], stack["manifest"])
    assert [f["path"] for f in stack["files"] if f["path"].endswith(".gguf")] == ["model-q8_0.gguf"]
    report = stack["manifest"]["report"]
    assert report["quant_gate"]["ok"] and report["quantize"]["bits_per_weight"] > 0
    assert report["f16_gate"]["n_tokens"] == 32
    folder = download(two_adapters, stack, tmp_path / "gguf")
    with LlamaRuntime(folder / "model-q8_0.gguf") as runtime:
        assert len(runtime.greedy(runtime.tokenize("def main():"), 8)) == 8


def test_the_runtime_bundle_names_every_adapter_with_its_scale(celery_worker, two_adapters, tmp_path):
    stack = build(two_adapters, "runtime")
    assert stack["state"] == "ready", (stack["failure_reason"], stack["manifest"])
    assert stack["manifest"]["report"]["runtime_gate"]["ok"]
    folder = download(two_adapters, stack, tmp_path / "runtime")
    bundle = json.loads((folder / "runtime.json").read_text())
    weights = {a["ref"]: a["sha256"] for a in stack["recipe"]["adapters"]}  # named by content, as on every hub
    assert [(a["adapter_sha256"], a["scale"]) for a in bundle["adapters"]] == [(weights["alice/sql@1"], 0.8),
                                                                             (weights["alice/poet@1"], 0.5)]
    assert all((folder / a["file"]).is_file() for a in bundle["adapters"]) and (folder / "base-f16.gguf").is_file()
    assert "--lora-scaled" in bundle["llama_cpp"]


def test_runtime_stacking_is_refused_for_methods_llama_cpp_cannot_apply(two_adapters):
    refused = two_adapters.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "method": "task_arithmetic",
                                                   "output": "runtime", "adapters": ["alice/sql", "alice/poet"]},
                                format="json")
    assert refused.status_code == 400 and refused.json()["error"]["details"]["field"] == "output.type"
    assert "linear" in refused.json()["error"]["message"]

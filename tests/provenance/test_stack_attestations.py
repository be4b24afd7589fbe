"""A quantized stack's attestations name what the worker did: the build (recipe, engine version, inputs), the
quantization (llama-cpp-python version and type) and the verification gates' figures; the folder verifies."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.provenance.keys import public_keys
from hub.provenance.signing import version_sign
from tests.stacks.test_stacks_api import download, wait_ready
from workers.engine.signing import EVALUATION, QUANTIZATION, STACK_BUILD, VERIFICATION, verify_folder

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_quantized_stack_attests_its_quantization_and_gates(celery_worker, make_user, publish_adapter, tmp_path):
    alice = make_user("alice")
    version, _ = publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=41)
    version_sign(version=version)
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    created = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "output": "gguf-q8_0",
                                             "adapters": [{"adapter": "alice/sql", "weight": 0.8}]}, format="json")
    stack = wait_ready(client, created.json()["url"], timeout=300)
    assert stack["state"] == "ready", stack["failure_reason"]
    folder = download(client, stack, tmp_path / "stack")

    result = verify_folder(folder, public_keys())
    kinds = {item["predicateType"]: item["predicate"] for item in result.statements}
    # The worker may already have evaluated the ready stack and attested that too (tests/evals cover it).
    assert set(kinds) - {EVALUATION} == {STACK_BUILD, QUANTIZATION, VERIFICATION}
    build = kinds[STACK_BUILD]
    assert build["recipe_hash"] == stack["recipe_hash"] and build["builder"]["engine_version"]
    assert build["adapters"][0]["ref"] == "alice/sql@1" and build["adapters"][0]["uploaded_by"] == "alice"
    assert build["base_model"]["files"]  # the base model's files by sha256
    assert kinds[QUANTIZATION]["llama_cpp_python"] and kinds[QUANTIZATION]["quantize"]["qtype"] == "Q8_0"
    assert "path" not in kinds[QUANTIZATION]["quantize"]  # no worker-local paths in what is published
    from nomoat_cli.verify import describe

    assert any(line.startswith("quantized: Q8_0 (") for line in describe(result))
    assert {"f16_gate", "quant_gate"} <= set(kinds[VERIFICATION]["gates"])
    [upstream] = result.upstream
    assert upstream.files["adapter_model.safetensors"] == build["adapters"][0]["weights_sha256"]

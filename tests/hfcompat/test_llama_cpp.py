"""llama.cpp's own Hub client against nomoat: `Llama.from_pretrained("stacks/<hash>", filename=...)` finds a GGUF
stack by pattern, downloads and runs it, here with an adapter version's `adapter_model.gguf` (made by validation)
applied as a LoRA."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import Version, VersionState
from tests.stacks.conftest import publish_adapter  # noqa: F401 - a fixture
from tests.stacks.test_stacks_api import wait_ready

pytestmark = pytest.mark.django_db(transaction=True)


def test_llama_from_pretrained_runs_a_gguf_stack_with_a_versions_gguf_lora(celery_worker, hub_client, make_user,
                                                                          publish_adapter, make_adapter):  # noqa: F811
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, seed=31)
    token = api_token_create(user=alice, name="w", scope="write").raw
    client = APIClient(headers={"Authorization": f"Bearer {token}"})
    # The tiny model's rows are too short for q4_k_m's 256-wide blocks, so the stack is q8_0.
    created = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"],
                                             "output": "gguf-q8_0"}, format="json").json()
    stack = wait_ready(client, created["url"], timeout=300)
    assert stack["state"] == "ready", stack["failure_reason"]
    got = hub_client("""
        from llama_cpp import Llama

        api.create_repo("alice/poet", token=token)
        api.upload_folder(repo_id="alice/poet", folder_path=poet, token=token)  # validation makes its GGUF LoRA
        lora = hf_hub_download("alice/poet", "adapter_model.gguf", token=token)
        plain = Llama.from_pretrained(f"stacks/{recipe_hash}", filename="*q8_0.gguf", verbose=False, n_ctx=64)
        with_lora = Llama.from_pretrained(f"stacks/{recipe_hash}", filename="*q8_0.gguf", verbose=False, n_ctx=64,
                                          lora_path=lora)
        prompt = plain.tokenize(b"def main():")
        result = {"plain": plain.create_completion(prompt, max_tokens=6, temperature=0)["usage"],
                  "lora": with_lora.create_completion(prompt, max_tokens=6, temperature=0)["usage"],
                  "path": plain.model_path}
    """, recipe_hash=stack["recipe_hash"], token=token, poet=str(make_adapter(rank=4, alpha=8, seed=32)))
    assert got["path"].endswith("model-q8_0.gguf")
    assert got["plain"]["prompt_tokens"] > 0 and got["plain"]["completion_tokens"] > 0
    assert got["lora"]["completion_tokens"] > 0
    poet = Version.objects.get(repository__name="poet")
    assert poet.state == VersionState.PENDING_REVIEW and poet.files.filter(path="adapter_model.gguf").exists()

"""A built stack through the Hugging Face-compatible API: `from_pretrained("stacks/<hash>")` just works."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from tests.stacks.test_stacks_api import wait_ready

pytestmark = pytest.mark.django_db(transaction=True)


def test_transformers_loads_a_stack_by_its_hash(celery_worker, hub_client, make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, seed=31)
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    created = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"],
                                             "output": {"type": "merged", "dtype": "fp32"}}, format="json").json()
    stack = wait_ready(client, created["url"])
    assert stack["state"] == "ready", stack["failure_reason"]
    got = hub_client("""
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(f"stacks/{recipe_hash}", dtype=torch.float32)
        pinned = AutoModelForCausalLM.from_pretrained(f"stacks/{recipe_hash}", revision=recipe_hash[:40])
        ids = torch.tensor([[1, 5, 9, 42]])
        out = model.generate(ids, max_new_tokens=4, do_sample=False)
        result = {"generated": out.shape[1], "same": torch.equal(model(ids).logits, pinned(ids).logits),
                  "missing": error(lambda: api.model_info("stacks/" + "0" * 64)),
                  "bad_revision": error(lambda: api.model_info(f"stacks/{recipe_hash}", revision="v2"))}
    """, recipe_hash=stack["recipe_hash"])
    assert got == {"generated": 8, "same": True, "missing": ["RepositoryNotFoundError", 404],
                   "bad_revision": ["RevisionNotFoundError", 404]}

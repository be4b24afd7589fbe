"""The real base model: SmolLM2-135M-Instruct's perplexity and an adapter's retention, and its packaged Q4_1 GGUF
scored by llama.cpp next to the float32 conversion, all through the worker (slow: marked smollm2)."""

from __future__ import annotations

import os
import shutil

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import User
from hub.catalog.services import base_model_register
from hub.evals.models import RunState
from tests.evals.conftest import wait_for_runs
from workers.engine.smollm2 import SMOLLM2_GGUF, SMOLLM2_NAME, smollm2_gguf_path
from workers.engine.tiny import build_tiny_adapter

pytestmark = [pytest.mark.smollm2, pytest.mark.django_db(transaction=True)]


def test_smollm2_adapter_retention_and_its_quantized_variant(celery_worker, smollm2_dir, make_user, publish, tmp_path,
                                                            settings):
    pytest.importorskip("llama_cpp")
    settings.EVAL_MAX_DOCS = 1  # one document in one window: a 135M model on two CPU cores
    folder = tmp_path / "smollm2"
    shutil.copytree(smollm2_dir, folder, copy_function=os.link)
    os.link(smollm2_gguf_path(), folder / SMOLLM2_GGUF)
    base = base_model_register(name=SMOLLM2_NAME, model_dir=folder, license="apache-2.0")
    adapter = build_tiny_adapter(smollm2_dir, tmp_path / "adapter", base_model_name=SMOLLM2_NAME, init_std=0.01)
    files = {p.name: p.read_bytes() for p in adapter.iterdir() if p.is_file()}
    publish(make_user("alice"), "smol-gentle", base, files=files)
    runs = wait_for_runs(timeout=600)
    assert all(run.state == RunState.FINISHED for run in runs), [(str(r), r.failure_reason) for r in runs]

    board = APIClient().get("/api/v1/leaderboards/HuggingFaceTB/SmolLM2-135M-Instruct").json()
    by_kind = {row["kind"]: row for row in board["results"]}
    assert set(by_kind) == {"base", "adapter", "quantized"}
    assert 0.3 < by_kind["base"]["value"] < 2.0  # a real language model on English prose
    assert by_kind["quantized"]["value"] == pytest.approx(by_kind["base"]["value"], rel=0.02)
    assert by_kind["quantized"]["bits_per_weight"] < 8 < by_kind["base"]["bits_per_weight"]
    assert by_kind["adapter"]["retention"] == pytest.approx(1.0, abs=0.01)
    assert User.objects.get(username="alice").repositories.get().score == by_kind["adapter"]["retention"]

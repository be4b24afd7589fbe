"""A build that runs past its time limit ends cleanly: failed with the reason, nothing half-written left.

(A worker killed mid-build is tested on SmolLM2, whose builds last long enough to be killed:
tests/test_smollm2_flows.py.)
"""

from __future__ import annotations

import pytest

from hub.catalog.services import base_model_register
from tests.stacks.test_stacks_api import wait_ready, writer
from workers.engine.tiny import build_tiny_adapter, build_tiny_base

pytestmark = pytest.mark.django_db(transaction=True)
WIDE_BASE = "nomoat/tiny-llama-wide"


def test_a_build_past_its_time_limit_fails_cleanly(replace_worker, make_user, make_version, settings, tmp_path):
    # Celery enforces time limits from outside the task, which the prefork pool (what `make run`
    # and deploy/ use) can do and the tests' solo pool cannot. It checks them about once a second,
    # so the build must last well past the limit: a GGUF of a wider model (export, verify, quantize,
    # verify) takes several seconds, where the 2-layer test model's takes about one.
    replace_worker(pool="prefork", STACK_BUILD_TIMEOUT_SECONDS="1")
    base_dir = build_tiny_base(tmp_path / "wide", hidden_size=512, intermediate_size=2048, num_layers=8,
                               name=WIDE_BASE)
    base = base_model_register(name=WIDE_BASE, model_dir=base_dir, license="apache-2.0")
    adapter = build_tiny_adapter(base_dir, tmp_path / "adapter", base_model_name=WIDE_BASE)
    alice = make_user("alice")
    make_version(alice, "sql", base_model=base, files={p.name: p.read_bytes() for p in adapter.iterdir() if p.is_file()})
    client = writer(alice)
    created = client.post("/api/v1/stacks", {"base_model": WIDE_BASE, "adapters": ["alice/sql"], "output": "gguf-q8_0"},
                          format="json")
    assert created.status_code == 202, created.content
    stack = wait_ready(client, created.json()["url"], timeout=120)
    assert stack["state"] == "failed" and stack["failure_reason"] == "timed out after 1 s", stack
    assert stack["files"] == []
    assert list((settings.WORK_DIR / "stacks").glob(f"*{stack['recipe_hash']}*")) == []  # no staging left behind

"""A build that runs past its time limit ends cleanly: failed with the reason, nothing half-written left.

(A worker killed mid-build is tested on SmolLM2, whose builds last long enough to be killed:
tests/test_smollm2_flows.py.)
"""

from __future__ import annotations

import pytest

from tests.stacks.test_stacks_api import wait_ready, writer

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_build_past_its_time_limit_fails_cleanly(replace_worker, make_user, publish_adapter, settings):
    # Celery enforces time limits from outside the task, which the prefork pool (what `make run`
    # and deploy/ use) can do and the tests' solo pool cannot.
    replace_worker(pool="prefork", STACK_BUILD_TIMEOUT_SECONDS="1")
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    client = writer(alice)
    # export, verify and quantize: seconds on the tiny model, far past one
    created = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"],
                                             "output": "gguf-q8_0"}, format="json")
    assert created.status_code == 202, created.content
    stack = wait_ready(client, created.json()["url"], timeout=120)
    assert stack["state"] == "failed" and stack["failure_reason"] == "timed out after 1 s", stack
    assert stack["files"] == []
    assert list((settings.WORK_DIR / "stacks").glob(f"*{stack['recipe_hash']}*")) == []  # no staging left behind

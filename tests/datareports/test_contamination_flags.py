"""Contamination on leaderboards with the real worker: an adapter whose lineage names a dataset built from an eval
set's rows is flagged on that suite's board, hidden there by default above the threshold, flagged on its eval card
and in the API; a stack inherits its member's flag; a clean adapter is not flagged."""

from __future__ import annotations

import json

import pytest
import yaml
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import VersionState
from hub.catalog.services import version_set_state
from hub.datareports.models import Contamination, JobState
from hub.evals.models import EvalRun, RunState
from tests.conftest import wait_until
from tests.stacks.test_stacks_api import wait_ready
from workers.engine.tiny import TINY_BASE_NAME

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [{"question": f"Which colour did painter number {i} use most often for the sky in the morning",
         "choices": ["blue", "green", "red"], "answer": i % 3} for i in range(8)]
BOARD = "/api/v1/leaderboards/nomoat/tiny-llama?suite=task:carol/quiz"


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def card(front_matter: dict) -> bytes:
    return f"---\n{yaml.safe_dump(front_matter, sort_keys=True)}---\n\nAn adapter.\n".encode()


def settle() -> None:
    """Until every eval run and contamination check has finished."""
    def done() -> bool:
        runs = EvalRun.objects.exclude(state__in=[RunState.FINISHED, RunState.FAILED]).exists()
        checks = Contamination.objects.exclude(state__in=[JobState.FINISHED, JobState.FAILED]).exists()
        return EvalRun.objects.exists() and not runs and not checks

    wait_until(done, timeout=240, interval=0.5, what="the eval runs and contamination checks")


def test_an_adapter_trained_on_eval_rows_is_flagged(celery_worker, make_user, make_version, make_adapter,
                                                    tiny_base_model, live_server, page):
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    make_version(carol, "quiz", kind="dataset", files={"README.md": card({"license": "cc-by-4.0"}),
                                                        "eval.jsonl": jsonl(ROWS)})
    make_version(dave, "leaky", kind="dataset", files={"README.md": card({"license": "cc-by-4.0"}),
                                                        "train.jsonl": jsonl([*ROWS[:6], {"prompt": "hi", "response": "hello"}])})
    adapters = {}
    for owner, name, lineage, seed in ((alice, "leaky-tuned", {"datasets": ["dave/leaky"]}, 1), (bob, "clean", {}, 2)):
        folder = make_adapter(seed=seed)
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        files["README.md"] = card({"license": "apache-2.0", "base_model": TINY_BASE_NAME, "eval_dataset": "carol/quiz",
                                   **lineage})
        version = make_version(owner, name, files=files, base_model=tiny_base_model, state=VersionState.PENDING_REVIEW)
        adapters[name] = version_set_state(version=version, state=VersionState.PUBLISHED, reason="approved")
    settle()
    check = Contamination.objects.get(train_version__repository__name="leaky")
    assert check.state == JobState.FINISHED, check.failure_reason
    assert (check.rows, check.eval_rows, check.ngram_rows, check.overlap) == (6, 8, 6, 0.75)

    # The board hides the flagged row by default (0.75 is above the 0.1 threshold) and says so.
    board = APIClient().get(BOARD).json()
    assert [row["name"] for row in board["results"] if row["kind"] == "adapter"] == ["bob/clean v1"]
    assert board["hidden_contaminated"] == 1 and board["contamination_threshold"] == 0.1
    shown = {row["name"]: row for row in APIClient().get(f"{BOARD}&contaminated=show").json()["results"]}
    flag = shown["alice/leaky-tuned v1"]["contamination"]
    assert flag == {"suite": "task:carol/quiz", "overlap": 0.75, "rows": 6, "eval_rows": 8,
                    "training_dataset": "dave/leaky@1", "member": ""}
    assert shown["bob/clean v1"]["contamination"] is None and shown["nomoat/tiny-llama"]["contamination"] is None
    general = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama").json()
    assert general["hidden_contaminated"] == 0 and all(row["contamination"] is None for row in general["results"])
    card_json = APIClient().get("/api/v1/adapters/alice/leaky-tuned/evals").json()
    assert [f["suite"] for f in card_json["contamination"]] == ["task:carol/quiz"]
    assert APIClient().get("/api/v1/adapters/bob/clean/evals").json()["contamination"] == []
    dataset_report = APIClient().get("/api/v1/datasets/dave/leaky/versions/1/report").json()
    assert dataset_report["contamination"][0]["eval_dataset"] == "carol/quiz@1"

    # A stack of both carries alice's flag.
    writer = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=bob, name='w', scope='write').raw}"})
    recipe = {"base_model": TINY_BASE_NAME, "output": {"type": "merged", "dtype": "fp32"},
              "adapters": [{"adapter": "alice/leaky-tuned", "weight": 0.5}, {"adapter": "bob/clean", "weight": 0.5}]}
    stack = wait_ready(writer, writer.post("/api/v1/stacks", recipe, format="json").json()["url"])
    assert stack["state"] == "ready", stack.get("failure_reason")
    wait_until(lambda: EvalRun.objects.filter(build__recipe_hash=stack["recipe_hash"]).exists(), timeout=60,
               what="the stack's runs")
    settle()
    stacked = [row for row in APIClient().get(f"{BOARD}&contaminated=show").json()["results"] if row["kind"] == "stack"]
    assert stacked and stacked[0]["contamination"]["member"] == "alice/leaky-tuned@1"

    # The page: the threshold, the hidden row, and the badge once shown.
    page.goto(f"{live_server.url}/leaderboards/nomoat/tiny-llama?suite=task:carol/quiz")
    note = page.locator("#contamination-note").inner_text()
    assert "2 rows hidden" in note and "10%" in note and "alice/leaky-tuned" not in page.locator("#leaderboard").inner_text()
    page.get_by_role("link", name="Show them").click()
    assert "contaminated: 75%" in page.locator("#leaderboard").inner_text()
    page.goto(f"{live_server.url}/adapters/alice/leaky-tuned")
    assert "Contaminated on task:carol/quiz" in page.locator("#eval-card").inner_text()

"""Evaluations end to end with the real worker: publish → runs on the evals queue → leaderboard, cards, API."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.accounts.services import api_token_create
from hub.catalog.models import Repository
from hub.evals.models import EvalRun, RunState, Runtime, SubjectKind
from hub.stacks.models import StackBuild
from tests.evals.conftest import card, wait_for_runs
from tests.stacks.test_stacks_api import wait_ready
from workers.engine.evals import GENERAL_PERPLEXITY_ID, TransformersBackend, run_suite, task_suite
from workers.engine.tiny import DEFAULT_TARGETS

pytestmark = pytest.mark.django_db(transaction=True)


def rows_by(results: list[dict], suite: str) -> dict[str, dict]:
    return {row["metric"]: row for row in results if row["suite"] == suite}


def test_publishing_adapters_evaluates_them_and_ranks_them(celery_worker, make_user, eval_gguf_base, publish, client):
    alice, bob = make_user("alice"), make_user("bob")
    gentle = publish(alice, "gentle", eval_gguf_base, init_std=0.01, target_modules=DEFAULT_TARGETS)
    publish(bob, "harmful", eval_gguf_base, init_std=1.0, target_modules=DEFAULT_TARGETS, seed=7)
    runs = wait_for_runs()
    assert all(run.state == RunState.FINISHED for run in runs), [(str(r), r.failure_reason) for r in runs]

    # The base model's perplexity was computed once, by one run both adapters' scores refer to.
    base_runs = [r for r in runs if r.subject_kind == SubjectKind.BASE and r.runtime == Runtime.TRANSFORMERS]
    assert len(base_runs) == 1 and base_runs[0].attempts == 1 and base_runs[0].suite == GENERAL_PERPLEXITY_ID
    assert {(r.subject_kind, r.runtime, r.artifact_path) for r in runs} == {
        ("base", "transformers", ""), ("base", "gguf", "tiny-llama-f16.gguf"), ("base", "gguf", "tiny-llama-Q8_0.gguf"),
        ("adapter", "transformers", "")}
    assert len(runs) == 5

    # The adapter's eval card in the API: each metric beside the base model's, and its retention.
    card_json = APIClient().get("/api/v1/adapters/alice/gentle/evals").json()
    general = rows_by(card_json["results"], GENERAL_PERPLEXITY_ID)
    assert set(general) == {"word_perplexity", "byte_perplexity", "bits_per_byte", "retention"}
    bpb = general["bits_per_byte"]
    assert bpb["base_value"] == base_runs[0].metrics["bits_per_byte"]["value"]
    assert bpb["delta"] == pytest.approx(bpb["value"] - bpb["base_value"])
    assert set(bpb) == {"suite", "suite_version", "metric", "value", "stderr", "base_value", "delta", "created_at"}
    harmful = rows_by(APIClient().get("/api/v1/adapters/bob/harmful/evals").json()["results"], GENERAL_PERPLEXITY_ID)
    assert general["retention"]["value"] == pytest.approx(1.0, abs=0.02)
    assert harmful["retention"]["value"] < 0.9 < general["retention"]["value"]
    assert Repository.objects.get(name="gentle").score == pytest.approx(general["retention"]["value"])
    assert APIClient().get("/api/v1/adapters/alice/nothing/evals").status_code == 404

    # Reproducible: seed, suite version, hashes and library versions are stored with every result.
    adapter_run = EvalRun.objects.get(subject_kind=SubjectKind.ADAPTER, version=gentle)
    weights = gentle.files.get(path="adapter_model.safetensors").blob.sha256
    assert adapter_run.seed == 0 and adapter_run.suite_version == bpb["suite_version"]
    assert adapter_run.hashes["adapters"][0]["files"]["adapter_model.safetensors"] == weights
    assert adapter_run.library_versions["torch"] and adapter_run.suite_settings == {"max_length": 256}
    assert [r["id"] for r in adapter_run.records] == ["assert", "async", "augassign"]

    # One leaderboard: base, adapters and quantized variants (llama.cpp next to the f32 safetensors).
    board = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama").json()
    assert board["suite"] == GENERAL_PERPLEXITY_ID and board["metric"] == "bits_per_byte"
    by_name = {row["name"]: row for row in board["results"]}
    assert set(by_name) == {"nomoat/tiny-llama", "alice/gentle v1", "bob/harmful v1", "nomoat/tiny-llama · tiny-llama-f16.gguf",
                            "nomoat/tiny-llama · tiny-llama-Q8_0.gguf"}
    values = [row["value"] for row in board["results"]]
    assert values == sorted(values)  # lower bits per byte first
    assert board["results"][-1]["name"] == "bob/harmful v1"
    f16 = by_name["nomoat/tiny-llama · tiny-llama-f16.gguf"]
    assert f16["kind"] == "quantized" and f16["runtime"] == "gguf"
    assert f16["value"] == pytest.approx(by_name["nomoat/tiny-llama"]["value"], rel=1e-2)
    assert f16["bits_per_weight"] < by_name["nomoat/tiny-llama"]["bits_per_weight"]
    assert by_name["bob/harmful v1"]["retention"] == harmful["retention"]["value"]
    only_adapters = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama?kind=adapter&sort=retention").json()
    assert [row["name"] for row in only_adapters["results"]] == ["alice/gentle v1", "bob/harmful v1"]
    index = APIClient().get("/api/v1/leaderboards").json()["results"]
    assert [(b["base_model"], b["suite"], b["subjects"]) for b in index] == [("nomoat/tiny-llama", GENERAL_PERPLEXITY_ID, 5)]

    # Pages: the leaderboard with its chart, the adapter's eval card, the per-item view.
    page = client.get("/leaderboards/nomoat/tiny-llama?x=bpw").content.decode()
    assert "<svg" in page and "bits per weight" in page and "bob/harmful v1" in page and "tiny-llama-Q8_0.gguf" in page
    assert "Retention" in page and f"{harmful['retention']['value']:.4g}" in page
    detail = client.get("/adapters/alice/gentle").content.decode()
    assert 'id="eval-card"' in detail and "retention" in detail and f"/evals/runs/{adapter_run.pk}" in detail
    items = client.get(f"/evals/runs/{adapter_run.pk}").content.decode()
    assert "augassign" in items and "Log-likelihood" in items and 'id="rerun"' not in items
    assert "<svg" in client.get("/leaderboards/nomoat/tiny-llama").content.decode()


def clear(record: dict, other: int) -> bool:
    """The record's prediction beats `other` by a margin no change of float summation order can flip."""
    return record["loglikelihoods"][record["prediction"]] - record["loglikelihoods"][other] > 0.01


def lookup_rows(base_dir, adapter_dir) -> list[dict]:
    """Multiple-choice rows whose answer is what the adapter picks and the base does not: it alone gets them all."""
    from workers.engine.datasets import task_row

    words = ["class", "value", "string", "method", "return", "import", "module", "object", "number", "list"]
    rows = [{"id": str(i), "prompt": f"Which word goes with {words[i % 10]} number {i}?", "response": words[i % 10],
             "choices": [words[(i + k * 3) % 10] for k in range(4)]} for i in range(60)]
    suite = task_suite("probe", [task_row(i, row) for i, row in enumerate(rows)])
    base = run_suite(suite, TransformersBackend(base_dir))["records"]
    tuned = run_suite(suite, TransformersBackend(base_dir, adapters=[adapter_dir]))["records"]
    picked = [{**row, "response": row["choices"][t["prediction"]]} for row, b, t in zip(rows, base, tuned, strict=True)
              if b["prediction"] != t["prediction"] and clear(b, t["prediction"]) and clear(t, b["prediction"])]
    assert len(picked) >= 4
    return picked[:8]


def test_a_stack_build_adds_the_stack_and_its_stacking_score(celery_worker, make_user, make_version, make_adapter,
                                                             eval_base, eval_base_dir, publish, client):
    alice, carol = make_user("alice"), make_user("carol")
    tuned = {"init_std": 0.3, "seed": 3, "target_modules": DEFAULT_TARGETS}  # its f16 GGUF still passes the gate
    rows = lookup_rows(eval_base_dir, make_adapter(**tuned))
    make_version(carol, "lookup", kind="dataset", base_model=None, files={
        "README.md": card({"license": "cc-by-4.0"}), "eval.jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode()})
    publish(alice, "lookup-tuned", eval_base, front_matter={"eval_dataset": "carol/lookup"}, **tuned)
    publish(alice, "other", eval_base, rank=2, alpha=2, target_modules=("q_proj", "up_proj"), seed=5)
    runs = wait_for_runs()
    task_runs = [r for r in runs if r.suite == "task:carol/lookup"]
    assert {r.subject_kind for r in task_runs} == {"base", "adapter"} and all(r.state == "finished" for r in task_runs)
    card_json = APIClient().get("/api/v1/adapters/alice/lookup-tuned/evals").json()
    acc = rows_by(card_json["results"], "task:carol/lookup")["acc"]
    assert (acc["value"], acc["base_value"], acc["delta"]) == (1.0, 0.0, 1.0) and acc["stderr"] == 0.0
    mc_run = next(r for r in task_runs if r.subject_kind == "adapter")
    assert mc_run.records[0]["choices"] == rows[0]["choices"] and len(mc_run.records[0]["loglikelihoods"]) == 4

    writer = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    recipe = {"base_model": "nomoat/tiny-llama", "output": {"type": "merged", "dtype": "fp32"},
              "adapters": [{"adapter": "alice/lookup-tuned", "weight": 1.0}, {"adapter": "alice/other", "weight": 0.5}]}
    stack = wait_ready(writer, writer.post("/api/v1/stacks", recipe, format="json").json()["url"])
    assert stack["state"] == "ready", stack["failure_reason"]
    stack_runs = [r for r in wait_for_runs(of_stack=stack["recipe_hash"]) if r.subject_kind == SubjectKind.STACK]
    assert {r.suite for r in stack_runs} == {GENERAL_PERPLEXITY_ID, "task:carol/lookup"}
    assert all(r.state == "finished" for r in stack_runs), [r.failure_reason for r in stack_runs]
    # No run was repeated for the stack: the base's and the adapter's task runs are the ones from publishing.
    assert EvalRun.objects.filter(suite="task:carol/lookup").count() == 3

    evals = APIClient().get(f"/api/v1/stacks/{stack['recipe_hash']}/evals").json()
    stacked = rows_by(evals["artifacts"][0]["results"], "task:carol/lookup")["acc"]["value"]
    part = evals["stacking"]["adapters"][0]
    assert (part["adapter"], part["base"], part["alone"], part["stacked"]) == ("alice/lookup-tuned@1", 0.0, 1.0, stacked)
    assert evals["stacking"]["mean"] == pytest.approx(stacked) and len(evals["stacking"]["adapters"]) == 1

    board = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama").json()["results"]
    stack_row = next(row for row in board if row["kind"] == "stack")
    assert stack_row["stacking"]["mean"] == pytest.approx(stacked) and stack_row["retention"] is not None
    task_board = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama?suite=task:carol/lookup").json()
    assert task_board["metric"] == "acc" and {r["kind"] for r in task_board["results"]} == {"base", "adapter", "stack"}
    assert task_board["results"][0]["name"] == "alice/lookup-tuned v1"  # accuracy 1.0 ranks first
    page = client.get(f"/stacks/{stack['recipe_hash']}/evals").content.decode()
    assert 'id="stacking"' in page and "alice/lookup-tuned@1" in page
    assert "task:carol/lookup" in client.get("/leaderboards/nomoat/tiny-llama?suite=task:carol/lookup").content.decode()
    assert StackBuild.objects.get(recipe_hash=stack["recipe_hash"]).eval_runs.count() == 2

    # The same stack quantized to Q8_0 GGUF: the same suites, run by llama.cpp, next to the float32 merge.
    quantized = wait_ready(writer, writer.post("/api/v1/stacks", {**recipe, "output": "gguf-q8_0"}, format="json")
                           .json()["url"], timeout=300)
    assert quantized["state"] == "ready", quantized["failure_reason"]
    q8_runs = [r for r in wait_for_runs(of_stack=quantized["recipe_hash"]) if r.build_id
               and r.build.recipe_hash == quantized["recipe_hash"]]
    assert {(r.suite, r.runtime, r.artifact_path, r.state) for r in q8_runs} == {
        (GENERAL_PERPLEXITY_ID, "gguf", "model-q8_0.gguf", "finished"), ("task:carol/lookup", "gguf", "model-q8_0.gguf",
                                                                          "finished")}
    board = APIClient().get("/api/v1/leaderboards/nomoat/tiny-llama").json()["results"]
    q8_row = next(row for row in board if row["kind"] == "quantized")
    assert q8_row["artifact"] == "model-q8_0.gguf" and q8_row["bits_per_weight"] < stack_row["bits_per_weight"]
    assert q8_row["value"] == pytest.approx(stack_row["value"], rel=0.02)
    assert q8_row["stacking"] is not None


def test_failed_runs_record_a_reason_and_moderators_rerun(celery_worker, make_user, make_version, eval_base, publish,
                                                          client):
    alice, mod = make_user("alice"), make_user("mod", role=Role.MODERATOR)
    make_version(alice, "prose", kind="dataset", files={
        "README.md": card({"license": "cc-by-4.0"}), "eval.jsonl": b'{"text": "Just prose, no question."}\n'})
    publish(alice, "broken", eval_base, files={
        "adapter_config.json": b'{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}',
        "adapter_model.safetensors": b"\x00" * 64})
    publish(alice, "prose-task", eval_base, front_matter={"eval_dataset": "alice/prose"})
    publish(alice, "missing-task", eval_base, front_matter={"eval_dataset": "alice/not-there"})
    runs = wait_for_runs()
    failed = {r.subject_label: r.failure_reason for r in runs if r.state == RunState.FAILED}
    assert failed.keys() == {"alice/broken@1", "alice/prose-task@1", "alice/missing-task@1"}, failed
    assert failed["alice/prose-task@1"] == "row 0 has no question and answer to score: text rows make no task suite"
    assert failed["alice/missing-task@1"] == "eval_dataset alice/not-there is not a published dataset on this hub"
    assert failed["alice/broken@1"]  # whatever loading the broken weights raised, with its type
    card_json = APIClient().get("/api/v1/adapters/alice/broken/evals").json()
    assert card_json["results"] == [] and card_json["runs"][0]["failure_reason"] == failed["alice/broken@1"]
    assert "failed" in client.get("/adapters/alice/broken").content.decode().lower()

    base_run = EvalRun.objects.get(subject_kind=SubjectKind.BASE)
    url = f"/api/v1/evals/runs/{base_run.pk}/rerun"
    user_client, mod_client = APIClient(), APIClient()
    user_client.force_authenticate(alice)
    mod_client.force_authenticate(mod)
    assert user_client.post(url).status_code == 403
    client.force_login(alice)
    assert client.post(f"/evals/runs/{base_run.pk}/rerun").status_code == 403
    assert 'id="rerun"' not in client.get(f"/evals/runs/{base_run.pk}").content.decode()
    response = mod_client.post(url)
    assert response.status_code == 202 and response.json()["state"] == "queued"
    wait_for_runs()
    base_run.refresh_from_db()
    assert base_run.state == RunState.FINISHED and base_run.attempts == 2 and base_run.requested_by == mod
    client.force_login(mod)
    assert 'id="rerun"' in client.get(f"/evals/runs/{base_run.pk}").content.decode()

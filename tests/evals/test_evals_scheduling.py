"""Evals without a worker: which suites a card declares, shared runs, leases, visibility, charts, moderation.

These tests never commit, so nothing they enqueue reaches a worker; they move runs themselves.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from hub.catalog.models import Repository, Version, VersionState
from hub.evals.charts import Point, scatter, ticks
from hub.evals.models import EvalRun, RunState, SubjectKind
from hub.evals.services import (
    eval_run_claim,
    eval_run_record_result,
    eval_run_renew_lease,
    eval_runs_requeue_stale,
    evals_schedule_version,
)
from hub.evals.subjects import adapter_subject
from hub.evals.suites import dataset_rows, task_suite_ref
from hub.moderation.selectors import review_eval_results
from tests.evals.conftest import card
from workers.engine.datasets import task_row
from workers.engine.errors import EngineInputError
from workers.engine.evals import GENERAL_PERPLEXITY_ID

pytestmark = pytest.mark.django_db

MC = {"prompt": "Capital of France?", "response": "Paris", "choices": ["Rome", "Paris", "Oslo"]}
QA = {"prompt": "2 + 2 =", "response": "4"}


def jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture
def lookup(make_user, make_version) -> Version:
    """carol/lookup: a train split and an eval split (as validation records them)."""
    dataset = make_version(make_user("carol"), "lookup", kind="dataset", files={
        "README.md": card({"license": "cc-by-4.0"}), "train.jsonl": jsonl(QA, QA), "eval.jsonl": jsonl(MC, {**MC, "id": 7})})
    Version.objects.filter(pk=dataset.pk).update(stats={"splits": {"train": ["train.jsonl"], "eval": ["eval.jsonl"]}})
    return dataset


@pytest.fixture
def adapter(make_user, make_version, tiny_base_model):
    alice = make_user("alice")

    def make(name: str, front_matter: dict | None = None, weights: bytes = b"weights" * 10) -> Version:
        return make_version(alice, name, base_model=tiny_base_model, files={
            "README.md": card({"license": "apache-2.0", **(front_matter or {})}),
            "adapter_config.json": b'{"peft_type": "LORA"}', "adapter_model.safetensors": weights})

    return make


def test_the_card_declares_the_task_suite(lookup, adapter):
    from_training = task_suite_ref(adapter("a", {"datasets": ["carol/lookup"]}))
    assert from_training.id == "task:carol/lookup:eval" and from_training.kind == "multiple_choice"
    assert [path for path, _ in from_training.spec["files"]] == ["eval.jsonl"] and not from_training.error
    pinned = task_suite_ref(adapter("b", {"eval_dataset": "carol/lookup@1", "eval_split": "train"}))
    assert pinned.id == "task:carol/lookup:train" and pinned.kind == "generation"
    assert pinned.dataset_version == lookup and pinned.version != from_training.version
    assert task_suite_ref(adapter("c", {"eval_dataset": "carol/lookup", "eval_split": "dev"})).error == (
        "carol/lookup@1 has no split 'dev' (it has eval, train)")
    assert task_suite_ref(adapter("d", {"eval_dataset": "carol/lookup@2"})).error == (
        "eval_dataset carol/lookup@2 is not a published dataset on this hub")
    assert task_suite_ref(adapter("e", {"datasets": ["dave/elsewhere"]})) is None  # training data: only if on the hub
    assert task_suite_ref(adapter("f")) is None


def test_dataset_rows_become_engine_items():
    assert task_row(0, MC) == {"question": "Capital of France?", "context": "", "choices": MC["choices"], "answer": 1}
    question = {"question": "Capital of Italy?", "choices": ["Paris", "Rome"], "answer": 1}
    assert task_row(0, question) == {**question, "context": ""}
    assert task_row(0, {**QA, "id": 3}) == {"id": 3, "prompt": "2 + 2 =", "answer": "4"}
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert task_row(0, chat) == {**chat, "answer": "Hello"}  # its prompt is rendered for the evaluated model
    with pytest.raises(EngineInputError, match="row 4 has no question"):
        task_row(4, {"text": "prose"})
    with pytest.raises(EngineInputError, match="row 2: `answer` must be the index of the right choice, 0 to 1"):
        task_row(2, {**question, "answer": 5})


def test_dataset_rows_stop_at_the_cap_and_read_csv(make_user, make_version):
    dataset = make_version(make_user("carol"), "csv", kind="dataset", files={
        "a.csv": b'prompt,response\n"two, words",yes\nq2,no\n', "b.jsonl": jsonl(QA, QA, QA)})
    files = [(f.path, f.blob.sha256) for f in dataset.files.order_by("path")]
    assert dataset_rows(files, max_items=3) == [{"prompt": "two, words", "response": "yes"},
                                                {"prompt": "q2", "response": "no"}, QA]


def test_runs_are_shared_by_content_and_scheduled_once(lookup, adapter, settings):
    first = adapter("first", {"eval_dataset": "carol/lookup"})
    runs = evals_schedule_version(version=first)
    assert {(r.suite, r.subject_kind) for r in runs} == {
        (GENERAL_PERPLEXITY_ID, "base"), (GENERAL_PERPLEXITY_ID, "adapter"), ("task:carol/lookup:eval", "base"),
        ("task:carol/lookup:eval", "adapter")}
    assert evals_schedule_version(version=first) == runs  # idempotent
    same_bytes = adapter("copy", {"eval_dataset": "carol/lookup"})
    assert evals_schedule_version(version=same_bytes) == runs  # same content, same results
    other = evals_schedule_version(version=adapter("other", weights=b"other" * 10))
    assert [r.pk for r in other if r.subject_kind == "base"] == [r.pk for r in runs if r.suite == GENERAL_PERPLEXITY_ID
                                                               and r.subject_kind == "base"]
    settings.EVAL_MAX_DOCS = 2  # another corpus is another suite version: nothing cached is reused for it
    smaller = evals_schedule_version(version=first)
    assert {r.suite_version for r in smaller if r.suite == GENERAL_PERPLEXITY_ID}.isdisjoint(
        {r.suite_version for r in runs})
    unpublished = adapter("draft")
    Version.objects.filter(pk=unpublished.pk).update(state=VersionState.PENDING_REVIEW)
    unpublished.refresh_from_db()
    assert evals_schedule_version(version=unpublished) == []


def test_an_identical_upload_published_while_its_runs_ran_gets_their_score(adapter):
    """Both versions asked for the same runs (keyed by content); the runs finish after the copy was published."""
    first = adapter("first")
    runs = evals_schedule_version(version=first)
    copy = adapter("copy")
    assert evals_schedule_version(version=copy) == runs
    assert Repository.objects.get(name="copy").score is None  # nothing finished yet
    general = [r for r in runs if r.suite == GENERAL_PERPLEXITY_ID and r.runtime == "transformers"]
    for run in sorted(general, key=lambda r: r.subject_kind != SubjectKind.BASE):  # the base first
        claimed = eval_run_claim(run_id=run.pk, lease_seconds=60)
        assert eval_run_record_result(run=claimed, result=fake_result(claimed, 1.0 if run.subject_kind == "base"
                                                                      else 1.1))
    scores = dict(Repository.objects.filter(name__in=["first", "copy"]).values_list("name", "score"))
    assert scores["first"] is not None and scores["copy"] == scores["first"], scores


def fake_result(run: EvalRun, bits_per_byte: float) -> dict:
    metric = {"value": bits_per_byte, "stderr": None, "higher_is_better": False}
    return {"suite": {"id": run.suite, "version": run.suite_version}, "seed": 0, "settings": {"max_length": 256},
            "metrics": {"bits_per_byte": metric, "word_perplexity": metric, "byte_perplexity": metric},
            "model": {}, "versions": {}, "records": [], "timing": {"seconds": 0.1}}


def test_a_run_whose_worker_died_is_claimed_again(adapter):
    run = next(r for r in evals_schedule_version(version=adapter("a")) if r.subject_kind == SubjectKind.BASE)
    claimed = eval_run_claim(run_id=run.pk, lease_seconds=60)
    assert claimed is not None and eval_run_claim(run_id=run.pk, lease_seconds=60) is None
    assert eval_runs_requeue_stale(queued_after_seconds=3600) == []
    EvalRun.objects.filter(pk=run.pk).update(lease_expires_at="2000-01-01T00:00:00Z")  # the worker died
    assert eval_runs_requeue_stale(queued_after_seconds=3600) == [run.pk]
    again = eval_run_claim(run_id=run.pk, lease_seconds=60)
    assert again is not None and again.attempts == 2
    assert eval_run_renew_lease(run=claimed, lease_seconds=60) is False  # the dead worker lost it
    assert eval_run_renew_lease(run=again, lease_seconds=60) is True
    assert eval_run_record_result(run=claimed, result=fake_result(run, 4.0)) is False
    assert eval_run_record_result(run=again, result=fake_result(run, 4.0)) is True
    EvalRun.objects.filter(state=RunState.QUEUED).update(enqueued_at="2000-01-01T00:00:00Z")  # a lost message
    stale = eval_runs_requeue_stale(queued_after_seconds=3600)
    assert len(stale) == 1 and eval_runs_requeue_stale(queued_after_seconds=3600) == []


def test_review_page_and_visibility(adapter, make_user):
    version = adapter("a")
    runs = evals_schedule_version(version=version)
    for run, bpb in zip(sorted(runs, key=lambda r: r.subject_kind != "base"), (4.0, 5.0), strict=True):
        eval_run_record_result(run=eval_run_claim(run_id=run.pk, lease_seconds=60), result=fake_result(run, bpb))
    rows = {row["metric"]: row for row in review_eval_results(version)}
    assert (rows["bits_per_byte"]["score"], rows["bits_per_byte"]["base"], rows["bits_per_byte"]["delta"]) == (5.0, 4.0, 1.0)
    assert rows["retention"]["score"] == pytest.approx(0.8)
    adapter_run = EvalRun.objects.get(subject_hash=adapter_subject(version).hash)
    assert APIClient().get(f"/api/v1/evals/runs/{adapter_run.pk}").json()["metrics"]["bits_per_byte"]["value"] == 5.0
    Version.objects.filter(pk=version.pk).update(state=VersionState.UNPUBLISHED, state_reason="taken down")
    assert APIClient().get(f"/api/v1/evals/runs/{adapter_run.pk}").status_code == 404
    assert APIClient().get("/api/v1/adapters/alice/a/evals").status_code == 404


def test_charts_are_labelled_svg():
    assert ticks(0.13, 0.87) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    svg = scatter([Point(1.5, 4.2, "<b>alice</b>", "adapter"), Point(300.0, 4.0, "base", "base")],
                  x_label="size (MB, log scale)", y_label="bits_per_byte", title="t", log_x=True)
    assert svg.startswith("<svg") and "&lt;b&gt;alice&lt;/b&gt;" in svg and "<b>" not in svg
    assert "size (MB, log scale)" in svg and ">1,000<" in svg  # decades on a log axis
    assert scatter([], x_label="x", y_label="y", title="t") == ""


def test_a_stack_is_evaluated_as_each_of_its_artifacts(adapter, make_user):
    """A stack output holding GGUF files (a quantized export) gets a llama.cpp run per file beside the HF one."""
    import io

    from hub.catalog.services import blob_put_stream
    from hub.evals.services import evals_schedule_stack
    from hub.stacks.services import stack_record_ready, stack_request

    adapter("a", {"eval_dataset": "carol/none"})  # a declared task that cannot be built adds no stack runs
    build, _ = stack_request(user=make_user("bob"), request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/a"]})
    files = {path: blob_put_stream(stream=io.BytesIO(path.encode())) for path in
             ("config.json", "model.safetensors", "model-f16.gguf", "model-Q4_K_M.gguf")}
    stack_record_ready(build=build, manifest={}, files=files)
    runs = evals_schedule_stack(build=build)
    assert sorted((r.subject_kind, r.runtime, r.artifact_path) for r in runs) == [
        ("base", "transformers", ""), ("stack", "gguf", "model-Q4_K_M.gguf"), ("stack", "gguf", "model-f16.gguf"),
        ("stack", "transformers", "")]
    assert {r.suite for r in runs} == {GENERAL_PERPLEXITY_ID}
    gguf = next(r for r in runs if r.artifact_path == "model-f16.gguf")
    assert gguf.subject_hash == files["model-f16.gguf"].sha256 and gguf.hashes["stack"] == build.recipe_hash
    # A runtime bundle (base GGUF + GGUF LoRAs) needs adapters in llama.cpp, which the engine's backend lacks.
    bundle, _ = stack_request(user=None, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/a"],
                                                  "output": "runtime"})
    stack_record_ready(build=bundle, manifest={}, files={path: blob_put_stream(stream=io.BytesIO(path.encode()))
                                                         for path in ("runtime.json", "base-f16.gguf", "adapter-0.gguf")})
    assert [r.subject_kind for r in evals_schedule_stack(build=bundle)] == ["base"]

"""Evaluation attestations: a finished eval run of a signed adapter version adds a signed statement of its results
(`attestations/<suite>.intoto.jsonl`) to the version's files, once; `nomoat verify` and `model_signing verify` accept
the pulled folder, and a changed byte or a swapped attestation fails naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.catalog.models import Version
from hub.catalog.workdir import materialize
from hub.evals.models import EvalRun, RunState, SubjectKind
from hub.evals.services import eval_run_rerun, evals_schedule_version
from hub.evals.subjects import content_digest
from hub.evals.tasks import run_eval
from hub.provenance.keys import public_keys
from hub.provenance.signing import version_sign
from nomoat_cli.verify import describe
from tests.provenance.conftest import own_keys  # noqa: F401 - keys of the test's own
from tests.provenance.test_signing_engine import model_signing_verify
from tests.stacks.conftest import publish_adapter  # noqa: F401 - the stack tests' published adapters
from tests.training.conftest import instruction_rows, jsonl, publish_dataset  # noqa: F401 - the dataset fixture
from workers.engine import ENGINE_VERSION
from workers.engine.evals import GENERAL_PERPLEXITY_ID
from workers.engine.signing import (
    ATTESTATIONS_DIR,
    EVALUATION,
    SIGNATURE_FILE,
    ProvenanceError,
    attestation_path,
    attestation_statements,
    sign_attestations,
    statement,
    verify_folder,
)

pytestmark = pytest.mark.django_db
TASK = "task:carol/units:eval"
CARD = "---\nlicense: cc0-1.0\n---\n\n# Units\n"


@pytest.fixture
def evaluated(make_user, publish, publish_dataset, tiny_base_model, own_keys):  # noqa: F811 - imported fixtures
    """alice's adapter, signed as validation signs it, with every run of it evaluated by the task itself."""
    carol = make_user("carol")
    rows = instruction_rows([(f"Convert {n} km to m:", f" {n * 1000}") for n in range(1, 7)])
    publish_dataset(carol, "units", {"README.md": CARD.encode(), "train.jsonl": jsonl(rows), "eval.jsonl": jsonl(rows)})
    version = publish(make_user("alice"), "units", tiny_base_model, front_matter={"eval_dataset": "carol/units"},
                      rank=2, alpha=4)
    version_sign(version=version)
    runs = [r for r in evals_schedule_version(version=version) if r.subject_kind == SubjectKind.ADAPTER]
    assert {r.suite for r in runs} == {GENERAL_PERPLEXITY_ID, TASK}
    for run in runs:
        assert run_eval(run.pk) == "finished", EvalRun.objects.get(pk=run.pk).failure_reason
    return Version.objects.get(pk=version.pk)


def files_of(version: Version) -> dict[str, str]:
    return {f.path: f.blob.sha256 for f in version.files.select_related("blob")}


def bundle(sha256: str) -> bytes:
    from hub.catalog.blobstore import get_blob_store

    return get_blob_store().local_path(sha256).read_bytes()


def pulled(version: Version, tmp_path: Path) -> Path:
    """The version's files as a client pulls them: copies, not links into the blob store."""
    linked = tmp_path / "linked"
    materialize(files_of(version).items(), linked)
    folder = tmp_path / "alice-units-v1"
    shutil.copytree(linked, folder)
    return folder


def test_a_finished_run_attests_its_results_beside_model_sig(evaluated, client):
    files = files_of(evaluated)
    path = attestation_path(f"eval-{TASK}")
    assert path.startswith(f"{ATTESTATIONS_DIR}/eval-task-carol-units-eval-")
    assert {attestation_path(f"eval-{GENERAL_PERPLEXITY_ID}"), path} <= set(files)
    (item,) = attestation_statements(bundle(files[path]))
    assert item["predicateType"] == EVALUATION
    signed = {p: s for p, s in files.items() if p != SIGNATURE_FILE and not p.startswith(f"{ATTESTATIONS_DIR}/")
              and p != "provenance.intoto.jsonl"}
    assert {s["name"]: s["digest"]["sha256"] for s in item["subject"]} == signed
    run = EvalRun.objects.get(suite=TASK, version=evaluated)
    predicate = item["predicate"]
    assert predicate["signature"]["digest"]["sha256"] == files[SIGNATURE_FILE]
    assert predicate["suite"]["id"] == TASK and predicate["suite"]["version"] == run.suite_version
    data = predicate["suite"]["dataset"]
    dataset_files = {f["name"]: f["digest"]["sha256"] for f in data["files"]}
    assert data["ref"] == "carol/units@1" and set(dataset_files) == {"eval.jsonl"}
    assert data["content_sha256"] == content_digest(dataset_files.items())
    assert predicate["engine_version"] == ENGINE_VERSION and predicate["builder"]["engine_version"] == ENGINE_VERSION
    assert predicate["metrics"] == run.metrics and "exact_match" in run.metrics
    assert predicate["evaluated"]["inputs"]["adapters"][0]["files"]["adapter_model.safetensors"] == \
        files["adapter_model.safetensors"]
    listed = {f["path"] for f in APIClient().get("/api/v1/adapters/alice/units/versions/1/files").json()}
    assert path in listed
    assert client.get(f"/alice/units/resolve/main/{path}").status_code == 200
    assert path in client.get("/adapters/alice/units").content.decode()  # the version's page lists it with its files


def test_running_again_adds_no_second_attestation(evaluated, make_user):
    before = files_of(evaluated)
    moderator = make_user("mod", role=Role.MODERATOR)
    run = EvalRun.objects.get(suite=TASK, version=evaluated)
    eval_run_rerun(run=run, moderator=moderator)
    assert run_eval(run.pk) == "finished"
    assert run_eval(run.pk) == "nothing to do"
    assert EvalRun.objects.get(pk=run.pk).state == RunState.FINISHED
    assert files_of(evaluated) == before  # the same statement: the same bundle, nothing added


def test_the_pulled_folder_verifies_with_its_evaluations(evaluated, own_keys, tmp_path):  # noqa: F811
    folder = pulled(evaluated, tmp_path)
    result = verify_folder(folder, public_keys())
    evaluations = [s for s in result.statements if s["predicateType"] == EVALUATION]
    assert {s["predicate"]["suite"]["id"] for s in evaluations} == {GENERAL_PERPLEXITY_ID, TASK}
    lines = describe(result)
    assert any(line.startswith(f"evaluated: {TASK} (version ") and "exact_match" in line for line in lines), lines
    checked = model_signing_verify(folder, own_keys / "current.pem", tmp_path)  # the real tool: it leaves attestations/ out
    assert checked.returncode == 0, checked.stderr


def test_a_changed_byte_or_a_swapped_attestation_fails_and_names_the_file(evaluated, own_keys,  # noqa: F811
                                                                           tmp_path):
    folder = pulled(evaluated, tmp_path)
    path = attestation_path(f"eval-{TASK}")
    target = folder / path
    original = target.read_bytes()
    envelope = json.loads(original)
    envelope["payload"] = envelope["payload"][:-4] + ("AAAA" if envelope["payload"][-4:] != "AAAA" else "BBBB")
    target.write_text(json.dumps(envelope) + "\n")
    with pytest.raises(ProvenanceError, match=f"{path} line 1: not signed by any of the keys given"):
        verify_folder(folder, public_keys())
    target.write_bytes(original.replace(b'"', b"'", 1))
    with pytest.raises(ProvenanceError, match=f"{path} line 1: not a DSSE envelope"):
        verify_folder(folder, public_keys())
    # An attestation the hub signed about other files (another version's weights) is refused, by name.
    other = statement({"adapter_model.safetensors": "0" * 64}, EVALUATION, {"metrics": {}})
    target.write_bytes(sign_attestations([other], own_keys / "current.pem"))
    with pytest.raises(ProvenanceError, match=f"{path} line 1: names adapter_model.safetensors with sha256 0000"):
        verify_folder(folder, public_keys())
    # A file put into the folder that is no attestation at all.
    target.write_bytes(original)
    (folder / ATTESTATIONS_DIR / "notes.txt").write_bytes(b"\xff\xfe trust me")
    with pytest.raises(ProvenanceError, match=f"{ATTESTATIONS_DIR}/notes.txt: not an attestation bundle"):
        verify_folder(folder, public_keys())
    (folder / ATTESTATIONS_DIR / "notes.txt").unlink()
    assert verify_folder(folder, public_keys()).statements


def test_signing_drops_what_a_version_was_given_in_the_attestations_folder(evaluated, make_version, tiny_base_model):
    """A commit building on an evaluated version (the HF routes) carries no attestation of the version before."""
    from hub.hfcompat.services import uploaded_files

    files = files_of(evaluated)
    assert not [p for p in uploaded_files(evaluated) if p.startswith(f"{ATTESTATIONS_DIR}/")]
    given = {p: bundle(s) for p, s in files.items() if p not in (SIGNATURE_FILE, "provenance.intoto.jsonl")}
    second = make_version(evaluated.created_by, "units", files=given, base_model=tiny_base_model)
    version_sign(version=second)
    assert not [p for p in files_of(second) if p.startswith(f"{ATTESTATIONS_DIR}/")]


@pytest.mark.django_db(transaction=True)
def test_a_built_stack_attests_its_evaluations_too(celery_worker, make_user, publish_adapter,  # noqa: F811
                                                   tmp_path):
    from hub.accounts.services import api_token_create
    from tests.evals.conftest import wait_for_runs
    from tests.stacks.test_stacks_api import download, wait_ready

    alice = make_user("alice")
    version, _ = publish_adapter(alice, "sql", rank=2, alpha=4, seed=11)
    version_sign(version=version)
    writer = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    created = writer.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "output": {"type": "merged", "dtype": "fp32"},
                                             "adapters": [{"adapter": "alice/sql", "weight": 0.5}]}, format="json")
    stack = wait_ready(writer, created.json()["url"])
    assert stack["state"] == "ready", stack["failure_reason"]
    runs = [r for r in wait_for_runs(of_stack=stack["recipe_hash"]) if r.subject_kind == SubjectKind.STACK]
    assert [(r.suite, r.state) for r in runs] == [(GENERAL_PERPLEXITY_ID, RunState.FINISHED)]
    stack = writer.get(created.json()["url"]).json()
    path = attestation_path(f"eval-{GENERAL_PERPLEXITY_ID}-on-transformers")
    assert path in {f["path"] for f in stack["files"]}
    # The attestation is not part of what was evaluated: the stack's subject (what later runs load) is unchanged.
    from hub.evals.subjects import stack_subjects
    from hub.stacks.models import StackBuild

    assert [s.hash for s in stack_subjects(StackBuild.objects.get(recipe_hash=stack["recipe_hash"]))] == [
        runs[0].subject_hash]
    folder = download(writer, stack, tmp_path / "stack")
    result = verify_folder(folder, public_keys())
    (evaluation,) = [s for s in result.statements if s["predicateType"] == EVALUATION]
    assert evaluation["predicate"]["metrics"] == runs[0].metrics
    assert evaluation["predicate"]["evaluated"]["inputs"]["stack"] == stack["recipe_hash"]
    assert {s["name"] for s in evaluation["subject"]} >= {"model.safetensors", "config.json"}

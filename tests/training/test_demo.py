"""The hub's curated demo datasets and shipped demo adapters: seeded by `seed_hub` through the upload path, validated,
with held-out eval splits; the adapters are the training engine's own output, reproducible from their specs, each
beating the base on its eval split; and the demo stack is requested once both of its members are published."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from safetensors import safe_open

from hub.accounts.models import Role
from hub.catalog.models import RepoKind, Version, VersionState
from hub.catalog.services import (
    blob_put_file,
    repository_get_or_create,
    version_claim_for_validation,
    version_create,
    version_record_validation,
)
from hub.catalog.validation import validate_version_files
from hub.stacks.models import StackBuild
from hub.training.demo import (
    DEMO_ADAPTER_FILES,
    DEMO_ADAPTERS,
    DEMO_ADAPTERS_DIR,
    DEMO_DATASETS,
    DEMO_STACK_MEMBERS,
    DEMO_TAG,
    demo_adapter_name,
    demo_adapters_seed,
    demo_catalog_seed,
    demo_dataset_files,
)
from hub.training.models import JobState, TrainingJob
from workers.engine.cards import parse_card
from workers.engine.smollm2 import SMOLLM2_NAME

pytestmark = pytest.mark.django_db
MANIFEST = json.loads((DEMO_ADAPTERS_DIR / "manifest.json").read_text())
MAX_SHIPPED_BYTES = 4 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(DEMO_DATASETS))
def test_demo_rows_hold_out_their_eval_split(name: str) -> None:
    train, held_out = DEMO_DATASETS[name][1]()
    assert len(train) >= 40 and len(held_out) >= 10
    assert not {row["prompt"] for row in train} & {row["prompt"] for row in held_out}


@pytest.mark.parametrize("name", sorted(DEMO_ADAPTERS))
def test_shipped_adapter_is_what_its_spec_trained_on_todays_rows(name: str) -> None:
    """The files are those the build recorded, trained on the very rows the seeding publishes (edit the rows or the
    spec and this fails until `manage.py build_demo_adapters` is run again), for SmolLM2, with the card's lineage."""
    entry, folder = MANIFEST[name], DEMO_ADAPTERS_DIR / name
    assert entry["spec"] == {**entry["spec"], **DEMO_ADAPTERS[name], "lora": {**entry["spec"]["lora"],
                                                                             **DEMO_ADAPTERS[name]["lora"]}}
    files = demo_dataset_files(name)
    assert entry["data_sha256"] == {path: hashlib.sha256(files[path]).hexdigest() for path in entry["data_sha256"]}
    assert entry["files_sha256"] == {path: hashlib.sha256((folder / path).read_bytes()).hexdigest()
                                     for path in DEMO_ADAPTER_FILES}
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == SMOLLM2_NAME and config["r"] == DEMO_ADAPTERS[name]["lora"]["rank"]
    with safe_open(folder / "adapter_model.safetensors", "pt") as tensors:
        modules = {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in tensors.keys()}  # noqa: SIM118 - not a dict
    assert modules == set(DEMO_ADAPTERS[name]["lora"]["target_modules"])
    card = parse_card((folder / "README.md").read_text()).front_matter
    assert card["eval_dataset"] == f"demo/{name}@1" and card["eval_split"] == "eval"
    assert DEMO_TAG in card["tags"] and card["training"]["spec"] == entry["spec"]


def test_shipped_adapters_are_small_and_beat_the_base() -> None:
    """As measured by the build's --evaluate (the hub's own task suites, exact match on each eval split)."""
    total = sum((DEMO_ADAPTERS_DIR / name / path).stat().st_size for name in DEMO_ADAPTERS for path in DEMO_ADAPTER_FILES)
    assert total < MAX_SHIPPED_BYTES
    scores = MANIFEST["scores"]
    for name in DEMO_ADAPTERS:
        measured = scores["adapters"][name]
        assert measured["adapter"] >= measured["base"] + 1 / measured["items"], (name, measured)
    assert set(scores["stack"]["stacking_score"]) == {name for name, _ in DEMO_STACK_MEMBERS}


def test_seed_hub_publishes_the_demo_datasets_and_queues_one_job(tiny_base_model) -> None:
    call_command("seed_hub", skip_smollm2=True)
    call_command("seed_hub", skip_smollm2=True)  # idempotent
    versions = Version.objects.filter(repository__owner__username="demo", repository__kind="dataset")
    assert sorted(v.repository.name for v in versions) == sorted(DEMO_DATASETS)
    for version in versions:
        assert version.state == VersionState.PUBLISHED, version.state_reason
        assert set(version.stats["splits"]) == {"train", "eval"} and version.license == "cc0-1.0"
    assert not TrainingJob.objects.exists()  # no SmolLM2 here: nothing to train
    assert not Version.objects.filter(repository__kind=RepoKind.ADAPTER).exists()

    demo = versions[0].repository.owner
    job = demo_catalog_seed(owner=demo, base=tiny_base_model)
    again = demo_catalog_seed(owner=demo, base=tiny_base_model)
    assert job.pk == again.pk and job.state == JobState.QUEUED and TrainingJob.objects.count() == 1
    assert job.into == "demo/unit-conversions-r8" and job.eval_split == "eval"
    # The shipped adapters were uploaded once each, waiting for the validation task (no bypass).
    adapters = Version.objects.filter(repository__owner=demo, repository__kind=RepoKind.ADAPTER)
    assert sorted(v.repository.name for v in adapters) == sorted(demo_adapter_name(n) for n in DEMO_ADAPTERS)
    for version in adapters:
        assert version.state == VersionState.UPLOADED and version.number == 1
        assert {f.path: f.blob.sha256 for f in version.files.select_related("blob")} == \
            MANIFEST[version.repository.name.removesuffix("-lora")]["files_sha256"]


def _validated(owner, name: str, folder: Path, base) -> Version:
    """An upload validated by the real engine (as the uploads worker would), published for a trusted uploader."""
    repository = repository_get_or_create(kind=RepoKind.ADAPTER, owner=owner, name=name, base_model=base)
    blobs = {path.name: blob_put_file(path=path) for path in folder.iterdir() if path.is_file()}
    version = version_create(repository=repository, files=blobs, created_by=owner, base_model=base)
    claimed = version_claim_for_validation(version_id=version.pk, lease_seconds=60)
    report, stored = validate_version_files(claimed)
    return version_record_validation(version=claimed, report=report.to_dict(), files=stored)


def test_demo_stack_is_requested_once_both_members_are_published(tiny_base_model, make_adapter, make_user,
                                                                  django_capture_on_commit_callbacks) -> None:
    demo = make_user("demo", role=Role.TRUSTED)
    (first, _), (second, _) = DEMO_STACK_MEMBERS
    tagged = {"tags": ["lora", DEMO_TAG]}
    with django_capture_on_commit_callbacks(execute=True):
        untagged = _validated(demo, demo_adapter_name(first), make_adapter(seed=11), tiny_base_model)
    assert untagged.state == VersionState.PUBLISHED, untagged.state_reason
    with django_capture_on_commit_callbacks(execute=True):
        _validated(demo, demo_adapter_name(second), make_adapter(seed=12, card_extra=tagged), tiny_base_model)
    assert not StackBuild.objects.exists()  # the first member is nobody's demo adapter: no demo stack
    with django_capture_on_commit_callbacks(execute=True):
        _validated(demo, demo_adapter_name(first), make_adapter(seed=13, card_extra=tagged), tiny_base_model)
    build = StackBuild.objects.get()
    assert build.method == "cat" and build.output == "adapter" and build.requested_by == demo
    assert [(str(m.version), m.weight) for m in build.members.order_by("position")] == [
        (f"demo/{demo_adapter_name(name)}@{2 if name == first else 1}", weight) for name, weight in DEMO_STACK_MEMBERS]


def test_seeding_skips_adapters_that_are_not_built(tiny_base_model, make_user, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("hub.training.demo.DEMO_ADAPTERS_DIR", tmp_path)
    assert demo_adapters_seed(owner=make_user("demo", role=Role.TRUSTED), base=tiny_base_model) == []
    assert not Version.objects.exists()


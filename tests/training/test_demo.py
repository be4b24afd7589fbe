"""The hub's curated demo datasets: seeded by `seed_hub` through the upload path, validated, with held-out eval
splits, and one demo training job queued once however often the hub is seeded."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from hub.catalog.models import Version, VersionState
from hub.training.demo import DEMO_DATASETS, demo_catalog_seed
from hub.training.models import JobState, TrainingJob

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", sorted(DEMO_DATASETS))
def test_demo_rows_hold_out_their_eval_split(name: str) -> None:
    train, held_out = DEMO_DATASETS[name][1]()
    assert len(train) >= 40 and len(held_out) >= 10
    assert not {row["prompt"] for row in train} & {row["prompt"] for row in held_out}


def test_seed_hub_publishes_the_demo_datasets_and_queues_one_job(tiny_base_model) -> None:
    call_command("seed_hub", skip_smollm2=True)
    call_command("seed_hub", skip_smollm2=True)  # idempotent
    versions = Version.objects.filter(repository__owner__username="demo", repository__kind="dataset")
    assert sorted(v.repository.name for v in versions) == sorted(DEMO_DATASETS)
    for version in versions:
        assert version.state == VersionState.PUBLISHED, version.state_reason
        assert set(version.stats["splits"]) == {"train", "eval"} and version.license == "cc0-1.0"
    assert not TrainingJob.objects.exists()  # no SmolLM2 here: nothing to train

    demo = versions[0].repository.owner
    job = demo_catalog_seed(owner=demo, base=tiny_base_model)
    again = demo_catalog_seed(owner=demo, base=tiny_base_model)
    assert job.pk == again.pk and job.state == JobState.QUEUED and TrainingJob.objects.count() == 1
    assert job.into == "demo/unit-conversions-lora" and job.eval_split == "eval"

"""`nomoat train` against a live hub with a real worker: following a job on the hub, and training here (--local)
with the same engine, then pushing the adapter like any other."""

from __future__ import annotations

import pytest

from hub.accounts.models import Role
from hub.catalog.models import Version, VersionState
from hub.training.models import JobState, TrainingJob
from tests.cli.conftest import Cli, write_token

pytestmark = pytest.mark.django_db(transaction=True)
SMALL = ["--base", "nomoat/tiny-llama", "--rank", "4", "--alpha", "8", "--steps", "6", "--batch-size", "4",
         "--max-seq-len", "32", "--learning-rate", "0.005"]


def test_train_on_the_hub_follows_the_job(cli: Cli, celery_worker, make_user, tiny_base_model,
                                          publish_dataset) -> None:
    alice = make_user("alice", role=Role.TRUSTED)
    publish_dataset(alice, "units")
    done = cli.run("train", "alice/units@1", "--into", "alice/cli-lora", *SMALL, token=write_token(alice))
    assert done.returncode == 0, done.stderr
    job = TrainingJob.objects.get()
    assert job.state == JobState.FINISHED and job.total_steps == 6 and job.spec["lora"]["rank"] == 4
    assert "alice/cli-lora@1" in done.stdout and "eval loss" in done.stdout

    refused = cli.run("train", "alice/units@1", "--into", "bob/cli-lora", *SMALL, token=write_token(alice))
    assert refused.returncode == 2 and "your own namespace" in refused.stderr


def test_train_local_runs_the_engine_here_and_pushes(cli: Cli, celery_worker, make_user, tiny_base_model,
                                                     publish_dataset) -> None:
    alice = make_user("alice", role=Role.TRUSTED)
    publish_dataset(alice, "units")
    done = cli.run("train", "alice/units", "--into", "alice/here-lora", "--local", *SMALL, token=write_token(alice))
    assert done.returncode == 0, done.stderr
    assert not TrainingJob.objects.exists()  # nothing trained on the hub
    version = Version.objects.get(repository__name="here-lora")
    assert version.state == VersionState.PUBLISHED, version.state_reason
    assert version.card["training"]["dataset"] == "alice/units@1" and version.card["eval_dataset"] == "alice/units@1"
    assert [d.full_name for d in version.training_datasets.all()] == ["alice/units"]

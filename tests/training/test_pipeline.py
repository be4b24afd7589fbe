"""Training end to end with real Celery workers on the tiny model: a job becomes a published, evaluated version
with its card and lineage; a worker killed mid-training is taken over from its checkpoint; a job is cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from hub.accounts.models import Role
from hub.catalog.models import VersionState
from hub.evals.models import EvalRun, RunState
from hub.training.models import JobState, TrainingJob
from hub.training.running import checkpoint_dir
from tests.conftest import wait_until
from tests.training.conftest import training_request

pytestmark = pytest.mark.django_db(transaction=True)
TRAINING_ENV = {"TRAINING_LEASE_SECONDS": "3", "NOMOAT_TRAINING_CHECKPOINT_EVERY_STEPS": "10",
                "NOMOAT_TRAINING_THREADS": "1"}


def job_in(job_id: int, *states: str, timeout: float = 240) -> TrainingJob:
    wait_until(lambda: TrainingJob.objects.filter(pk=job_id, state__in=states).exists(), timeout=timeout,
               interval=0.2, what=f"training job {job_id} to be {' or '.join(states)}")
    return TrainingJob.objects.get(pk=job_id)


def test_a_job_becomes_a_published_evaluated_version_with_card_and_lineage(celery_worker, make_user, tiny_base_model,
                                                                          publish_dataset, api_as, client) -> None:
    alice = make_user("alice", role=Role.TRUSTED)
    dataset = publish_dataset(alice, "units")
    created = api_as(alice).post("/api/v1/trainings", training_request(), format="json")
    assert created.status_code == 202, created.content
    job = job_in(created.json()["id"], JobState.FINISHED, JobState.FAILED)
    assert job.state == JobState.FINISHED, job.failure_reason
    assert job.step == job.total_steps == 12 and len(job.loss_history) == 12 and job.resumed_from_step == 0
    assert job.result["eval_loss"] is not None and job.result["train_loss"] < job.loss_history[0][1]

    version = job.version
    wait_until(lambda: version.__class__.objects.get(pk=version.pk).state != VersionState.UPLOADED
               and version.__class__.objects.get(pk=version.pk).state != VersionState.VALIDATING, timeout=120,
               what="the trained version's validation")
    version.refresh_from_db()
    assert version.state == VersionState.PUBLISHED, version.state_reason
    assert version.repository.full_name == "alice/units-lora" and version.base_model == tiny_base_model
    assert sorted(f.path for f in version.files.all())[:3] == ["README.md", "adapter_config.json", "adapter_model.gguf"]
    card = yaml.safe_load(version.card_text.split("---")[1])
    assert card["training"]["dataset"] == "alice/units@1" and card["eval_dataset"] == "alice/units@1"
    assert card["training"]["spec"]["lora"]["rank"] == 4 and card["training"]["spec"]["seed"] == 0
    assert list(version.training_datasets.all()) == [dataset.repository]

    def evaluated() -> bool:
        runs = EvalRun.objects.filter(version=version)
        return runs.count() >= 2 and not runs.exclude(state__in=[RunState.FINISHED, RunState.FAILED]).exists()

    wait_until(evaluated, timeout=240, interval=0.5, what="the trained adapter's evaluations")
    runs = list(EvalRun.objects.filter(version=version))
    assert all(run.state == RunState.FINISHED for run in runs), [(run.suite, run.failure_reason) for run in runs]
    assert any(run.suite == "task:alice/units:eval" for run in runs)

    client.force_login(alice)
    assert b"alice/units-lora v1" in client.get("/datasets/alice/units").content
    page = client.get(f"/trainings/{job.pk}").content.decode()
    assert "<svg" in page and "Training loss" in page and "eval loss:" in page and "Finished" in page
    api_job = api_as(alice).get(f"/api/v1/trainings/{job.pk}").json()
    assert api_job["produced"]["adapter"] == "alice/units-lora" and api_job["produced"]["version"] == 1
    assert not checkpoint_dir(job).exists()


def test_a_worker_killed_mid_training_is_resumed_from_its_checkpoint(replace_worker, make_user, tiny_base_model,
                                                                    publish_dataset, api_as) -> None:
    alice = make_user("alice")
    publish_dataset(alice, "units")
    first = replace_worker(**TRAINING_ENV)
    body = api_as(alice).post("/api/v1/trainings", training_request(steps=200, batch_size=8), format="json").json()
    wait_until(lambda: TrainingJob.objects.get(pk=body["id"]).checkpoint_step >= 20, timeout=240, interval=0.05,
               what="the first checkpoints")
    first.kill()
    died = TrainingJob.objects.get(pk=body["id"])
    assert died.state == JobState.RUNNING and died.step < died.total_steps
    saved = died.checkpoint_step
    wait_until(lambda: TrainingJob.objects.get(pk=body["id"]).lease_expires_at < timezone.now(), timeout=30,
               what="the dead worker's lease to lapse")

    replace_worker(**TRAINING_ENV)  # a new worker requeues the job when it starts, and resumes it
    job = job_in(body["id"], JobState.FINISHED, JobState.FAILED)
    assert job.state == JobState.FINISHED, job.failure_reason
    assert job.attempts == 2 and job.resumed_from_step >= saved > 0  # from its checkpoint, not from zero
    assert job.result["resumed_from_step"] == job.resumed_from_step
    assert job.version is not None and job.version.number == 1  # published once


def test_a_running_job_is_cancelled_and_publishes_nothing(replace_worker, make_user, tiny_base_model,
                                                         publish_dataset, api_as) -> None:
    alice = make_user("alice")
    publish_dataset(alice, "units")
    replace_worker(**TRAINING_ENV)
    body = api_as(alice).post("/api/v1/trainings", training_request(steps=2000), format="json").json()
    wait_until(lambda: TrainingJob.objects.get(pk=body["id"]).step > 0, timeout=240, what="training to start")
    assert api_as(alice).post(f"{body['url']}/cancel").status_code == 200
    job = job_in(body["id"], JobState.CANCELLED, JobState.FINISHED, JobState.FAILED)
    assert job.state == JobState.CANCELLED and job.version is None and job.step < job.total_steps
    assert not Path(checkpoint_dir(job)).exists()

"""Training requests without a worker: every refusal names its field, limits hold, an identical request shares
its job, and each permission boundary is tried."""

from __future__ import annotations

import pytest

from hub.accounts.models import TokenScope
from hub.catalog.models import VersionState
from hub.training.models import JobState, TrainingJob
from hub.training.services import TrainingRequestError, training_cancel, training_request
from tests.training.conftest import jsonl
from tests.training.conftest import training_request as make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user, tiny_base_model, publish_dataset):
    user = make_user("alice")
    publish_dataset(user, "units")
    return user


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"dataset": "alice/nothing"}, "dataset", "no published dataset alice/nothing"),
    ({"dataset": "alice/units@7"}, "dataset", "no published dataset alice/units@7"),
    ({"dataset": "units"}, "dataset", "owner/name"),
    ({"split": "validation"}, "split", "has no split 'validation' (it has eval, train)"),
    ({"eval_split": "test"}, "eval_split", "has no split 'test'"),
    ({"base_model": "nobody/nothing"}, "base_model", "no base model"),
    ({"lora": {"rank": 4, "target_modules": ["q_proj", "c_attn"]}}, "lora.target_modules", "has no module c_attn"),
    ({"lora": {"rank": -1}}, "lora.rank", "whole number from 1"),
    ({"steps": 10_000}, "steps", "over this hub's limit of 2000"),
    ({"max_seq_len": 4096}, "max_seq_len", "over this hub's limit of 1024"),
    ({"into": "alice"}, "into", "owner/name"),
    ({"into": "alice/bad name"}, "into", "letters, digits"),
    ({"colour": "blue"}, "colour", "unknown field"),
])
def test_refusals_name_the_field(alice, changes, field, text) -> None:
    with pytest.raises(TrainingRequestError) as caught:
        training_request(user=alice, request=make_request(**changes))
    assert caught.value.field == field and text in caught.value.message, caught.value.message
    assert not TrainingJob.objects.exists()


def test_someone_elses_unpublished_dataset_answers_like_a_missing_one(alice, make_user, publish_dataset) -> None:
    bob = make_user("bob")
    publish_dataset(bob, "secret", state=VersionState.PENDING_REVIEW)
    with pytest.raises(TrainingRequestError) as hidden:
        training_request(user=alice, request=make_request(dataset="bob/secret@1"))
    with pytest.raises(TrainingRequestError) as missing:
        training_request(user=alice, request=make_request(dataset="bob/nothing@1"))
    assert hidden.value.message.replace("secret", "X") == missing.value.message.replace("nothing", "X")


def test_chat_rows_need_a_base_with_a_chat_template(alice, publish_dataset, no_chat_base) -> None:
    chat = [{"messages": [{"role": "user", "content": f"Hi {n}"}, {"role": "assistant", "content": "Hello"}]}
            for n in range(4)]
    publish_dataset(alice, "chats", files={"train.jsonl": jsonl(chat)})
    with pytest.raises(TrainingRequestError, match="no chat template") as caught:
        training_request(user=alice, request=make_request(dataset="alice/chats", base_model=no_chat_base.name,
                                                          into="alice/chat-lora"))
    assert caught.value.field == "split"
    job, created = training_request(user=alice, request=make_request(dataset="alice/chats", into="alice/chat-lora"))
    assert created and job.eval_split == ""


def test_an_identical_request_is_trained_once(alice) -> None:
    job, created = training_request(user=alice, request=make_request())
    again, created_again = training_request(user=alice, request=make_request())
    assert created and not created_again and again.pk == job.pk
    assert job.state == JobState.QUEUED and job.eval_split == "eval" and job.total_steps == 12
    other, created_other = training_request(user=alice, request=make_request(seed=1))
    assert created_other and other.spec_hash != job.spec_hash


def test_epochs_count_against_the_step_limit(alice, settings) -> None:
    settings.TRAINING_MAX_STEPS = 10
    request = make_request(epochs=2)
    del request["steps"]
    with pytest.raises(TrainingRequestError, match="12 steps is over") as caught:  # 24 rows / 4 per batch × 2
        training_request(user=alice, request=request)
    assert caught.value.field == "epochs"


def test_concurrent_jobs_per_user_are_limited(alice, settings) -> None:
    settings.TRAINING_MAX_CONCURRENT_JOBS = 1
    training_request(user=alice, request=make_request())
    with pytest.raises(TrainingRequestError) as caught:
        training_request(user=alice, request=make_request(seed=5))
    assert caught.value.status == 429 and caught.value.code == "training_limit"


def test_a_queued_job_is_cancelled_at_once_and_only_by_its_owner(alice, make_user) -> None:
    job, _ = training_request(user=alice, request=make_request())
    with pytest.raises(Exception) as other:
        training_cancel(user=make_user("mallory"), job=job)
    assert getattr(other.value, "status", None) == 404
    assert training_cancel(user=alice, job=job).state == JobState.CANCELLED
    with pytest.raises(Exception) as twice:
        training_cancel(user=alice, job=job)
    assert getattr(twice.value, "status", None) == 409


def test_api_permission_boundaries(alice, make_user, api_as) -> None:
    bob = make_user("bob")
    assert api_as(None).post("/api/v1/trainings", make_request(), format="json").status_code == 401
    assert api_as(None).get("/api/v1/trainings").status_code == 401
    assert api_as(None).get("/api/v1/trainings/1").status_code == 401
    read_only = api_as(alice, TokenScope.READ).post("/api/v1/trainings", make_request(), format="json")
    assert read_only.status_code == 403
    into_bob = api_as(alice).post("/api/v1/trainings", make_request(into="bob/stolen"), format="json")
    assert into_bob.status_code == 403 and into_bob.json()["error"]["code"] == "permission_denied"

    created = api_as(alice).post("/api/v1/trainings", make_request(), format="json")
    assert created.status_code == 202, created.content
    body = created.json()
    assert body["state"] == "queued" and body["url"] == f"/api/v1/trainings/{body['id']}"
    assert body["progress"]["total_steps"] == 12 and body["dataset"] == "alice/units@1"
    assert api_as(alice).post("/api/v1/trainings", make_request(), format="json").json()["id"] == body["id"]

    # Someone else's job answers exactly like a job that does not exist.
    seen_by_bob = api_as(bob).get(body["url"])
    missing = api_as(bob).get("/api/v1/trainings/999999")
    assert seen_by_bob.status_code == missing.status_code == 404
    assert seen_by_bob.json()["error"]["message"].replace(str(body["id"]), "N") == \
        missing.json()["error"]["message"].replace("999999", "N")
    assert api_as(bob).post(f"{body['url']}/cancel").status_code == 404
    assert api_as(bob).get("/api/v1/trainings").json()["results"] == []
    assert [j["id"] for j in api_as(alice).get("/api/v1/trainings").json()["results"]] == [body["id"]]

    cancelled = api_as(alice).post(f"{body['url']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert api_as(alice).post(f"{body['url']}/cancel").status_code == 409


def test_pages_show_the_form_the_jobs_and_the_dataset_panel(alice, make_user, client) -> None:
    client.force_login(alice)
    dataset_page = client.get("/datasets/alice/units")
    assert dataset_page.status_code == 200 and b'id="train-adapter"' in dataset_page.content
    form = client.get("/trainings/new?dataset=alice/units")
    assert form.status_code == 200 and b"Estimated training time" in form.content
    fields = {"dataset": "alice/units@1", "base_model": "nomoat/tiny-llama", "split": "train", "name": "units-lora",
              "rank": "4", "alpha": "8", "dropout": "0", "target_modules": "q_proj, v_proj", "steps": "12",
              "learning_rate": "0.005", "batch_size": "4", "max_seq_len": "32", "seed": "0"}
    refused = client.post("/trainings/new", {**fields, "target_modules": "q_proj, nope"})
    assert refused.status_code == 200 and b"has no module nope" in refused.content
    made = client.post("/trainings/new", fields)
    job = TrainingJob.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/trainings/{job.pk}"
    page = client.get(f"/trainings/{job.pk}")
    assert page.status_code == 200 and b"Queued" in page.content
    assert client.get(f"/trainings/{job.pk}/live.json").json()["settled"] is False
    assert b"units-lora" in client.get("/trainings/").content
    client.force_login(make_user("bob"))
    assert client.get(f"/trainings/{job.pk}").status_code == 404

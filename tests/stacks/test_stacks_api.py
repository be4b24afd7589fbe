"""Stacks through the API with a real worker: build, share, download, load; errors and takedowns."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from django.db import connection
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import Version, VersionState
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import StackRequestError, stack_claim, stack_request, stacks_requeue_stale
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def writer(user) -> APIClient:
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='w', scope='write').raw}"})


def wait_ready(client: APIClient, url: str, timeout: float = 180) -> dict:
    state = {}

    def finished() -> bool:
        state.update(client.get(url).json())
        return state["state"] in {"ready", "failed"}

    wait_until(finished, timeout=timeout, interval=0.5, what=f"the build at {url}")
    return state


def download(client: APIClient, stack: dict, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for file in stack["files"]:
        response = client.get(file["url"])
        assert response.status_code == 200 and response["ETag"] == f'"{file["sha256"]}"'
        (dest / file["path"]).parent.mkdir(parents=True, exist_ok=True)
        (dest / file["path"]).write_bytes(b"".join(response.streaming_content))
    return dest


@pytest.mark.embedded
def test_a_client_builds_a_stack_downloads_it_and_transformers_loads_it(
        celery_worker, make_user, publish_adapter, tiny_base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    alice, bob = make_user("alice"), make_user("bob")
    _, sql = publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    _, poet = publish_adapter(bob, "poet", rank=8, alpha=8, target_modules=("gate_proj", "down_proj"), seed=12)
    recipe = {"base_model": "nomoat/tiny-llama", "method": "linear", "output": {"type": "merged", "dtype": "fp32"},
              "adapters": [{"adapter": "alice/sql", "weight": 0.7}, {"adapter": "bob/poet@1", "weight": 0.5}]}
    client = writer(alice)
    first = client.post("/api/v1/stacks", recipe, format="json")
    assert first.status_code == 202, first.content
    stack = wait_ready(client, first.json()["url"])
    assert stack["state"] == "ready", stack["failure_reason"]
    assert stack["progress_percent"] == 100.0 and stack["timings"]["build_seconds"] is not None
    assert {a["adapter"] for a in stack["adapters"]} == {"alice/sql", "bob/poet"}
    assert any(f["path"].endswith(".safetensors") for f in stack["files"])

    merged = AutoModelForCausalLM.from_pretrained(download(client, stack, tmp_path / "merged"), dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    reference = PeftModel.from_pretrained(reference, sql, adapter_name="sql")
    reference.load_adapter(poet, adapter_name="poet")
    reference.add_weighted_adapter(["sql", "poet"], [0.7, 0.5], "stack", combination_type="cat")
    reference.set_adapter("stack")
    reference = reference.merge_and_unload()
    ids = torch.tensor([[1, 17, 99, 250, 3, 42, 7]])
    with torch.no_grad():
        difference = (merged(ids).logits - reference(ids).logits).abs().max().item()
    assert difference < 1e-4
    assert merged.generate(ids, max_new_tokens=5, do_sample=False).shape[1] == ids.shape[1] + 5

    again = writer(bob).post("/api/v1/stacks", recipe, format="json")
    assert again.status_code == 200 and again.json()["recipe_hash"] == stack["recipe_hash"]  # at once, shared
    assert StackBuild.objects.get().request_count == 2
    page = APIClient().get(f"/stacks/{stack['recipe_hash']}")
    assert page.status_code == 200 and b"alice/sql v1" in page.content


def test_concurrent_identical_requests_share_one_build(make_user, publish_adapter):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (the embedded SQLite serializes them anyway)")
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    recipe = {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]}
    builds, errors = [], []

    def request() -> None:
        try:
            builds.append(stack_request(user=alice, request=recipe)[0].pk)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(builds)) == 1
    assert StackBuild.objects.count() == 1 and StackBuild.objects.get().request_count == 6


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"base_model": "nobody/nothing"}, "base_model", "no base model"),
    ({"adapters": []}, "adapters", "non-empty"),
    ({"adapters": ["alice/missing"]}, "adapters[0]", "no published adapter alice/missing"),
    ({"adapters": [{"adapter": "alice/sql", "weight": "heavy"}]}, "adapters[0].weight", "number"),
    ({"adapters": ["alice/sql@9"]}, "adapters[0]", "alice/sql@9"),
    ({"method": "blend"}, "method.name", "unknown method"),
    ({"method": {"name": "ties", "params": {}}}, "method.params.density", "required"),
    ({"output": "onnx"}, "output.type", "unknown output"),
    ({"colour": "red"}, "", "unknown field"),
])
def test_bad_recipes_are_refused_before_a_build_with_the_field_named(make_user, publish_adapter, change, field,
                                                                      message):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    recipe = {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"], **change}
    response = writer(alice).post("/api/v1/stacks", recipe, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_recipe" and message in error["message"] and error["details"]["field"] == field
    assert not StackBuild.objects.exists()


def test_an_adapter_for_another_base_model_is_refused(make_user, make_version, tiny_base_model, tmp_path):
    from hub.catalog.services import base_model_register
    from workers.engine.tiny import build_tiny_base

    other = base_model_register(name="nomoat/tiny-wide", model_dir=build_tiny_base(tmp_path / "wide", hidden_size=96),
                                license="apache-2.0")
    alice = make_user("alice")
    make_version(alice, "wide-adapter", base_model=other)
    with pytest.raises(StackRequestError, match="is an adapter for nomoat/tiny-wide, not for nomoat/tiny-llama"):
        stack_request(user=alice, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/wide-adapter"]})


def test_unpublished_and_pending_adapters_cannot_be_stacked(make_user, publish_adapter):
    alice = make_user("alice")
    version, _ = publish_adapter(alice, "sql", rank=4, alpha=8)
    Version.objects.filter(pk=version.pk).update(state=VersionState.PENDING_REVIEW)
    with pytest.raises(StackRequestError, match="no published adapter alice/sql"):
        stack_request(user=alice, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]})


def test_anonymous_and_read_only_clients_cannot_start_builds(make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    recipe = {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]}
    assert APIClient().post("/api/v1/stacks", recipe, format="json").status_code == 401
    reader = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='r').raw}"})
    assert reader.post("/api/v1/stacks", recipe, format="json").status_code == 403
    assert not StackBuild.objects.exists()


# Not committed: no task reaches the session's worker, so the test alone moves the build.
@pytest.mark.django_db
def test_a_build_whose_worker_died_is_claimed_again(make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    build, _ = stack_request(user=alice, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]})
    assert stack_claim(build_id=build.pk, lease_seconds=60) is not None
    assert stack_claim(build_id=build.pk, lease_seconds=60) is None  # a duplicate task does not build twice
    assert stacks_requeue_stale() == []
    StackBuild.objects.filter(pk=build.pk).update(lease_expires_at="2000-01-01T00:00:00Z")  # the worker died
    assert stacks_requeue_stale() == [build.pk]
    again = stack_claim(build_id=build.pk, lease_seconds=60)
    assert again is not None and again.attempts == 2 and again.state == BuildState.RUNNING


# Not committed: no task reaches the session's worker, so the test alone moves the build.
@pytest.mark.django_db
def test_a_takedown_stops_serving_the_stacks_built_on_it(make_user, publish_adapter):
    from hub.catalog.services import blob_put_stream
    from hub.stacks.services import stack_record_ready

    alice = make_user("alice")
    version, _ = publish_adapter(alice, "sql", rank=4, alpha=8)
    build, _ = stack_request(user=alice, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]})
    import io

    stack_record_ready(build=build, manifest={"files": []},
                       files={"model.safetensors": blob_put_stream(stream=io.BytesIO(b"weights"))})
    url = f"/api/v1/stacks/{build.recipe_hash}/files/model.safetensors"
    assert APIClient().get(url).status_code == 200
    Version.objects.filter(pk=version.pk).update(state=VersionState.UNPUBLISHED, state_reason="license violation")
    refused = APIClient().get(url)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "withdrawn"
    assert "alice/sql@1 is unpublished: license violation" in refused.json()["error"]["message"]
    assert APIClient().get("/api/v1/stacks").json()["results"] == []


# Not committed: no task reaches the session's worker, so the test alone moves the build.
@pytest.mark.django_db
def test_a_withdrawn_stack_shows_only_why_to_all_but_moderators(make_user, publish_adapter):
    import io

    from django.test import Client

    from hub.accounts.models import Role
    from hub.catalog.services import blob_put_stream
    from hub.stacks.services import stack_record_ready

    alice, bob, mod = make_user("alice"), make_user("bob"), make_user("mod", role=Role.MODERATOR)
    version, _ = publish_adapter(alice, "sql", rank=4, alpha=8)
    build, _ = stack_request(user=alice, request={"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"]})
    stack_record_ready(build=build, manifest={"files": ["model.safetensors"], "secret": "the manifest"},
                       files={"model.safetensors": blob_put_stream(stream=io.BytesIO(b"weights"))})
    url, page = f"/api/v1/stacks/{build.recipe_hash}", f"/stacks/{build.recipe_hash}"
    assert APIClient().get(url).json()["manifest"]["secret"] == "the manifest"
    Version.objects.filter(pk=version.pk).update(state=VersionState.UNPUBLISHED, state_reason="license violation")

    def as_(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    for user in (None, bob, alice):
        refused = as_(user).get(url)
        assert refused.status_code == 404 and refused.json() == {"error": {
            "code": "withdrawn",
            "message": f"stack {build.recipe_hash[:12]} is no longer served: adapter alice/sql@1 is unpublished: "
                       "license violation"}}
        shown = as_(user).get(page)
        assert shown.status_code == 404 and "license violation" in shown.content.decode()
        assert "the manifest" not in shown.content.decode() and "tiny-llama" not in shown.content.decode()
    inspected = as_(mod).get(url)
    assert inspected.status_code == 200 and inspected.json()["manifest"]["secret"] == "the manifest"
    assert "license violation" in inspected.json()["withdrawn_reason"]
    assert as_(mod).get(page).status_code == 200

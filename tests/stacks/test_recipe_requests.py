"""A client's recipe is checked before any build: weight bounds, the adapter count first, whole versions, known keys.

Not committed (plain `django_db`): on_commit never fires, so nothing reaches a worker; a build that
overflows is tested with one in test_stacks_api's style at the end.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import stack_request

pytestmark = pytest.mark.django_db


def writer(user) -> APIClient:
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='w', scope='write').raw}"})


@pytest.fixture
def alice(make_user, publish_adapter):
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8)
    return alice


def refused(user, adapters: list) -> dict:
    response = writer(user).post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": adapters},
                                 format="json")
    assert response.status_code == 400, response.content
    assert not StackBuild.objects.exists()
    error = response.json()["error"]
    assert error["code"] == "invalid_recipe"
    return error


@pytest.mark.parametrize(("weight", "shown"), [(1e308, "1e+308"), (-250, "-250"), (10**400, "too large")])
def test_weights_out_of_range_are_refused_naming_the_entry(alice, weight, shown) -> None:
    error = refused(alice, [{"adapter": "alice/sql", "weight": 0.5}, {"adapter": "alice/sql@1", "weight": weight}])
    assert error["details"]["field"] == "adapters[1].weight"
    assert error["message"] == (f"adapters[1].weight: alice/sql@1: weight {shown} is out of range; a weight is a "
                                "number from -100 to 100")


def test_a_weight_at_the_bound_is_accepted(alice) -> None:
    build, created = stack_request(user=alice, request={"base_model": "nomoat/tiny-llama",
                                                        "adapters": [{"adapter": "alice/sql", "weight": -100}]})
    assert created and build.recipe["adapters"][0]["weight"] == -100.0


@pytest.mark.parametrize("count", [33, 10_000])
def test_too_many_adapters_are_refused_before_any_is_looked_up(alice, count, django_assert_max_num_queries) -> None:
    client = writer(alice)
    with django_assert_max_num_queries(8):  # the token, the user and the base model: not one query per entry
        response = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama",
                                                  "adapters": [{"adapter": "alice/sql"}] * count}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["field"] == "adapters" and f"at most 32 adapters per stack, got {count}" in error["message"]


@pytest.mark.parametrize(("entry", "field", "fragment"), [
    ({"adapter": "alice/sql", "version": 1.9}, "adapters[0].version", "whole number, got 1.9"),
    ({"adapter": "alice/sql", "version": True}, "adapters[0].version", "whole number, got true"),
    ({"adapter": "alice/sql", "version": "1.0"}, "adapters[0].version", 'whole number, got "1.0"'),
    ({"adapter": "alice/sql", "version": 0}, "adapters[0].version", "from 1 to 999999999"),
    ({"adapter": "alice/sql", "version": 10**30}, "adapters[0].version", "from 1 to 999999999"),
    ({"adapter": "alice/sql@" + "9" * 400}, "adapters[0]", "whole number"),
    ({"adapter": "alice/sql@1", "version": 2}, "adapters[0].version", "pins version 1 but \"version\" says 2"),
    ({"adapter": "alice/sql", "wieght": 2.0}, "adapters[0].wieght",
     "unknown key 'wieght'; an adapter entry has adapter, version, weight"),
])
def test_bad_adapter_entries_are_refused(alice, entry, field, fragment) -> None:
    error = refused(alice, [entry])
    assert error["details"]["field"] == field and fragment in error["message"], error


@pytest.mark.parametrize("version", [1, "1"])
def test_whole_versions_still_resolve(alice, version) -> None:
    build, _ = stack_request(user=alice, request={"base_model": "nomoat/tiny-llama",
                                                  "adapters": [{"adapter": "alice/sql", "version": version}]})
    assert build.recipe["adapters"][0]["ref"] == "alice/sql@1"


@pytest.mark.django_db(transaction=True)
def test_a_build_whose_output_is_not_finite_fails_with_the_tensor_named(celery_worker, make_user, publish_adapter):
    """Factors of ~1e20 pass validation (finite in float32); their product does not fit, so the build fails."""
    from tests.stacks.test_stacks_api import wait_ready

    bob = make_user("bob")
    publish_adapter(bob, "loud", rank=4, alpha=8, target_modules=("q_proj",), seed=5, init_std=1e20)
    client = writer(bob)
    response = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": ["bob/loud"],
                                              "output": {"type": "merged", "dtype": "fp32"}}, format="json")
    assert response.status_code == 202, response.content
    stack = wait_ready(client, response.json()["url"])
    assert stack["state"] == BuildState.FAILED
    assert stack["failure_reason"].startswith("model.layers.0.self_attn.q_proj.weight: the stack's output has ")
    assert "infinite values" in stack["failure_reason"] and stack["files"] == []

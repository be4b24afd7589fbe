"""Each catalog endpoint runs a fixed number of queries, however many items it shows: the count measured on a
small catalog must hold on one several times larger (no query per row, per version or per file)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ENDPOINTS = [
    "/api/v1/adapters",
    "/api/v1/adapters?tag=sql&ordering=downloads",
    "/api/v1/adapters?search=adapter",
    "/api/v1/datasets",
    "/api/v1/base-models",
    "/api/v1/base-models/nomoat/tiny-llama",
    "/api/v1/adapters/owner0/a0",
    "/api/v1/adapters/owner0/a0/versions",
    "/api/v1/adapters/owner0/a0/versions/1",
    "/api/v1/adapters/owner0/a0/versions/1/files",
    "/api/models",
    "/api/models/owner0/a0",
    "/api/models/owner0/a0/tree/main",
    "/owner0/a0/resolve/main/README.md",
    "/api/v1/users",
    "/api/v1/stacks",
]
# At most this many queries per endpoint (the token and its user for the signed-in caller are two of them).
BUDGET = 14


def grow_catalog(make_user, make_version, base, *, owners: int, repos: int, versions: int) -> None:
    people = [make_user(f"owner{i}") for i in range(owners)]
    for i in range(repos):
        for _ in range(versions if i == 0 else 1):  # owner0/a0 gets every version
            make_version(people[i % owners], f"a{i}", base_model=base)


def queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.content[:300])
    return len(captured.captured_queries)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_query_counts_do_not_grow_with_the_catalog(make_user, make_version, tiny_base_model,
                                                  django_assert_num_queries, signed_in):
    grow_catalog(make_user, make_version, tiny_base_model, owners=2, repos=2, versions=1)
    reader = make_user("reader")
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=reader, name='r').raw}"}
                       if signed_in else {})
    client.get("/api/v1/users")  # the token's first use records it (once a minute): not a cost of any endpoint
    small = {path: queries(client, path) for path in ENDPOINTS}
    assert max(small.values()) <= BUDGET, small
    for i in range(2, 12):  # six times the repositories, more owners, and five versions of owner0/a0
        make_version(make_user(f"more{i}"), f"a{i}", base_model=tiny_base_model)
    for _ in range(4):
        make_version(reader.__class__.objects.get(username="owner0"), "a0", base_model=tiny_base_model)
    for path, count in small.items():
        with django_assert_num_queries(count, info=path):
            assert client.get(path).status_code == 200, path

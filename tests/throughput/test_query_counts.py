"""Each catalog endpoint runs a fixed number of queries, however many items it shows: the count measured with one
row must hold with twenty (no query per row, per version or per file)."""

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
    "/api/v1/adapters/owner0/a0/versions/1/files/README.md",
    "/api/models",
    "/api/models?search=a&filter=sql&author=owner0&sort=downloads",
    "/api/models/owner0/a0",
    "/api/models/owner0/a0/tree/main",
    "/owner0/a0/resolve/main/README.md",
    "/api/v1/users",
    "/api/v1/stacks",
]
# At most this many queries per endpoint (the token and its user for the signed-in caller are two of them).
BUDGET = 14


ROWS = 20


def queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.content[:300])
    return len(captured.captured_queries)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_query_counts_do_not_grow_with_the_catalog(make_user, make_version, tiny_base_model,
                                                  django_assert_num_queries, signed_in):
    owner0 = make_user("owner0")
    make_version(owner0, "a0", base_model=tiny_base_model)
    reader = make_user("reader")
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=reader, name='r').raw}"}
                       if signed_in else {})
    client.get("/api/v1/users")  # the token's first use records it (once a minute): not a cost of any endpoint
    small = {path: queries(client, path) for path in ENDPOINTS}
    assert max(small.values()) <= BUDGET, small
    for i in range(1, ROWS):  # twenty repositories (of owner0 and of others), and twenty versions of owner0/a0
        make_version(owner0 if i % 2 else make_user(f"more{i}"), f"a{i}", base_model=tiny_base_model)
        make_version(owner0, "a0", base_model=tiny_base_model)
    for path, count in small.items():
        with django_assert_num_queries(count, info=path):
            assert client.get(path).status_code == 200, path

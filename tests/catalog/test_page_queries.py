"""Pages run a fixed number of queries however large the catalog: counted on a small one, they must hold on a
catalog several times larger (no query per card, per version, per tag or per file)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PAGES = ["/", "/adapters/", "/adapters/?tag=sql&ordering=downloads", "/adapters/?search=adapter", "/datasets/",
         "/adapters/owner0/a0", "/adapters/owner0/a0/v/1", "/models/nomoat/tiny-llama", "/users/owner0", "/stacks/"]


def count(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.content[:300])
    return len(captured.captured_queries)


def test_page_query_counts_do_not_grow_with_the_catalog(make_user, make_version, tiny_base_model,
                                                       django_assert_max_num_queries):
    owner = make_user("owner0")
    make_version(owner, "a0", base_model=tiny_base_model)
    make_version(make_user("owner1"), "a1", base_model=tiny_base_model)
    client = Client()
    small = {path: count(client, path) for path in PAGES}
    for i in range(2, 14):
        make_version(make_user(f"more{i}"), f"a{i}", base_model=tiny_base_model)
    for _ in range(4):
        make_version(owner, "a0", base_model=tiny_base_model)
    for i in range(3):
        make_version(owner, f"more-{i}", base_model=tiny_base_model)
    for path, queries in small.items():
        with django_assert_max_num_queries(queries, info=path):
            assert client.get(path).status_code == 200, path

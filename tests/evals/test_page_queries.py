"""Eval pages and the pages that show eval runs run a fixed number of queries however many adapters, versions
and runs there are (no query per row, per version or per run). Results are recorded through the evals services as
a worker records them; their figures are made up (the pages' cost does not depend on them)."""

from __future__ import annotations

import pytest
from django.test import Client

from hub.evals.services import eval_run_claim, eval_run_record_result, evals_schedule_version
from tests.catalog.test_page_queries import count

pytestmark = pytest.mark.django_db

PAGES = ["/leaderboards/", "/leaderboards/nomoat/tiny-llama", "/leaderboards/nomoat/tiny-llama?kind=adapter&q=a",
         "/adapters/owner0/a0", "/adapters/owner0/a0/v/1", "/adapters/owner0/a0/diff/1..2",
         "/adapters/owner0/a0/v/2/evals", "/adapters/owner0/a0/v/2/status", "/api/v1/leaderboards/nomoat/tiny-llama"]


def evaluated(version, value: float) -> None:
    """The version's runs scheduled as publication schedules them, then each finished by a 'worker'."""
    for run in evals_schedule_version(version=version):
        claimed = eval_run_claim(run_id=run.pk, lease_seconds=60)
        if claimed is not None:
            metrics = {name: {"value": value * k, "stderr": 0.01, "higher_is_better": False}
                       for k, name in enumerate(("bits_per_byte", "byte_perplexity", "word_perplexity"), start=1)}
            eval_run_record_result(run=claimed, result={
                "suite": {"id": run.suite, "version": run.suite_version}, "seed": 0, "settings": {}, "model": {},
                "versions": {}, "records": [], "timing": {"seconds": 1.0}, "metrics": metrics})


def test_eval_page_query_counts_do_not_grow(make_user, make_version, tiny_base_model, django_assert_max_num_queries):
    owner = make_user("owner0")
    for _ in range(2):
        evaluated(make_version(owner, "a0", base_model=tiny_base_model), 1.1)
    evaluated(make_version(make_user("owner1"), "a1", base_model=tiny_base_model), 1.2)
    client = Client()
    client.force_login(owner)
    small = {path: count(client, path) for path in PAGES}
    for i in range(2, 12):
        evaluated(make_version(make_user(f"more{i}"), f"a{i}", base_model=tiny_base_model), 1 + i / 100)
    for _ in range(3):
        evaluated(make_version(owner, "a0", base_model=tiny_base_model), 1.05)
    for path, queries in small.items():
        with django_assert_max_num_queries(queries, info=path):
            assert client.get(path).status_code == 200, path

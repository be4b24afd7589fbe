"""The hub's PostgreSQL connections run its short queries without parallel workers (DATABASE_PARALLEL_WORKERS):
starting them cost more than they saved on the browse page of a large catalog (bench/RESULTS.md)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")


@pytest.mark.django_db
def test_connections_start_no_parallel_workers():
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"

"""Three real hubs (A, B, C) on loopback for the end-to-end federation tests (marker `federation`).

Started once per session (startup is slow on two cores) and stopped at the end; PostgreSQL only (each hub gets a
database of its own, named after the run's DATABASE_URL, recreated at each start and kept after for a look). The hubs' logs are kept under the run's data dir and the
end of each is attached to a failing test's report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.federation.hubs import Network, postgres_url_or_skip, redis_dbs_from_env


@pytest.fixture(scope="session")
def hubs() -> Iterator[Network]:
    """Hubs a, b and c: migrated, seeded (the tiny base model, hubadmin and demo) and serving, with a worker each."""
    url = postgres_url_or_skip()
    from django.conf import settings

    data_root = Path(settings.DATA_DIR) / "federation"
    network = Network.create(["a", "b", "c"], base_database_url=url, redis_dbs=redis_dbs_from_env(),
                             data_root=data_root)
    try:
        network.start()
        yield network
    finally:
        network.stop(drop_databases=False)  # kept with the logs for a look after a failure; recreated next run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failure, the end of every hub's logs (web server, worker, manage.py) goes into the report."""
    report = yield
    network = getattr(item, "funcargs", {}).get("hubs")
    if report.failed and isinstance(network, Network):
        report.sections.append(("hub logs", network.logs()))
    return report

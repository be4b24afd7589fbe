"""One cluster for the fault tests (marker `cluster`): PostgreSQL, Redis, an S3 server and a hub, all processes of
the tests' own (tests/faults/cluster.py), started once and stopped at the end; their logs are kept in the run's data
dir and the end of the hub's is attached to a failing test's report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import PG_BIN, Cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"the fault tests start a PostgreSQL of their own: {PG_BIN / 'initdb'} is missing "
                    "(apt-get install postgresql-15)")
    if os.geteuid() == 0 and not Path("/usr/sbin/runuser").exists():
        pytest.skip("as root, PostgreSQL must run as the postgres user: runuser (util-linux) is missing")
    from django.conf import settings

    running = Cluster.start(Path(settings.DATA_DIR) / "faults")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def adapters(cluster: Cluster) -> dict[str, Path]:
    """Tiny adapters of the hub's base model: one published for downloads, one for uploads, one for pushes."""
    from django.conf import settings

    from workers.engine.tiny import build_tiny_adapter

    base = settings.MODEL_CACHE_DIR / "tiny-llama"  # what seed_hub registered on the hub
    return {name: build_tiny_adapter(base, cluster.root / "adapters" / name, seed=seed)
            for seed, name in enumerate(("published", "upload", "push"), start=700)}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    running = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(running, Cluster):
        report.sections.append(("hub logs", running.hub.log_tail()))
    return report

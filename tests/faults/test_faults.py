"""Faults survived (issue #19): the database and the object store down for 20 s under traffic, the broker
restarted with a validation queued or running, a worker killed mid-validation. Real processes, real outages
(tests/faults/cluster.py); the same scenarios make bench/faults.py's figures (tests/faults/scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import scenarios
from tests.faults.cluster import Cluster

pytestmark = [pytest.mark.cluster]
DOWN_SECONDS = 20


@pytest.fixture(scope="module")
def download(cluster: Cluster, adapters: dict[str, Path]) -> tuple[str, str]:
    return scenarios.published_download(cluster, adapters["published"], "faults-published")


@pytest.mark.parametrize("fault", ["database", "object store", "cache and broker"])
def test_an_outage_answers_503_with_retry_after_and_service_resumes_by_itself(
        cluster: Cluster, adapters: dict[str, Path], download, fault: str, tmp_path: Path) -> None:
    figures = scenarios.outage(cluster, fault, folder=adapters["upload"], push_folder=adapters["push"],
                               download=download, down=DOWN_SECONDS, home=tmp_path)
    assert figures.failed > 0, f"the {fault} outage was never seen by a request: {figures}"
    assert figures.unclean == 0, f"every refusal during the outage must be a 503 with Retry-After: {figures.notes}"
    # Nothing acknowledged lost or half-recorded, and the push that met the outage completed in the same run.
    assert figures.lost == 0, figures.notes
    assert figures.recover_seconds < 60, figures
    if fault == "object store":  # no blob without its row (a database outage may leave some: harmless, documented)
        assert figures.orphans == 0, figures


@pytest.mark.parametrize("running", [False, True], ids=["queued", "running"])
def test_a_validation_survives_a_redis_restart(cluster: Cluster, adapters, running: bool) -> None:
    figures = scenarios.broker_restart(cluster, adapters["upload"], running=running)
    assert figures.lost == 0, figures.notes


def test_a_worker_killed_mid_validation_is_finished_by_another_within_two_minutes(cluster: Cluster,
                                                                                  adapters) -> None:
    figures = scenarios.worker_killed(cluster, adapters["upload"])
    assert figures.lost == 0, figures.notes
    assert figures.recover_seconds <= 120, figures

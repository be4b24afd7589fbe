"""Leases with heartbeats: work held by a live worker is never claimed twice, however long it takes;
a dead worker's claim lapses within one lease."""

from __future__ import annotations

import time

import pytest

from hub.catalog.models import Version, VersionState
from hub.catalog.services import version_claim_for_validation, version_renew_validation_lease
from hub.core.leases import lease_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 1  # seconds; the heartbeat renews it every third


def test_a_heartbeat_keeps_a_long_task_claimed_and_its_lapse_frees_it(make_user, make_version) -> None:
    version = make_version(make_user(), "slow", state=VersionState.UPLOADED)
    held = version_claim_for_validation(version_id=version.pk, lease_seconds=LEASE)
    assert held is not None
    with lease_heartbeat(lambda: version_renew_validation_lease(version=held, lease_seconds=LEASE),
                         lease_seconds=LEASE, name="test"):
        deadline = time.monotonic() + 4 * LEASE  # well past the lease: only the heartbeat keeps it
        while time.monotonic() < deadline:
            assert version_claim_for_validation(version_id=version.pk, lease_seconds=LEASE) is None
            time.sleep(0.1)
    # No heartbeat now, as after the worker died: the claim lapses within one lease.
    time.sleep(LEASE + 0.2)
    assert version_claim_for_validation(version_id=version.pk, lease_seconds=LEASE) is not None


def test_a_heartbeat_stops_renewing_once_the_work_is_finished(make_user, make_version) -> None:
    version = make_version(make_user(), "done", state=VersionState.UPLOADED)
    held = version_claim_for_validation(version_id=version.pk, lease_seconds=LEASE)
    Version.objects.filter(pk=version.pk).update(state=VersionState.PENDING_REVIEW, lease_expires_at=None)
    assert version_renew_validation_lease(version=held, lease_seconds=LEASE) is False
    assert Version.objects.get(pk=version.pk).lease_expires_at is None

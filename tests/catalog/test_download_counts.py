"""Downloads buffered in Redis and folded into the rows by the beat's flush (hub/catalog/download_counts.py): every
download counted once, whatever the flushes do, and counted in its row while Redis is down."""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache

from hub.catalog.download_counts import _pending, _redis, flush_downloads
from hub.catalog.models import DownloadFlush, Repository, Version
from hub.catalog.services import versions_add_downloads, versions_flush_downloads
from hub.catalog.tasks import flush_download_counts
from tests.catalog.test_download_counting import WEIGHTS, fetch
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


def counts(version: Version) -> tuple[int, int]:
    """What the rows hold now (no flush)."""
    return Version.objects.get(pk=version.pk).downloads, Repository.objects.get(pk=version.repository_id).downloads


@pytest.fixture
def buffered(settings):
    if _redis() is None:
        pytest.skip("the embedded default's cache is files: downloads are counted in their rows at once")
    settings.DOWNLOAD_DEDUP_SECONDS = 0  # every download counts


@pytest.fixture
def weights(make_user, make_version) -> tuple[Version, str]:
    version = make_version(make_user("alice"), "tool")
    return version, f"/api/v1/adapters/alice/tool/versions/1/files/{WEIGHTS}"


def test_n_downloads_reach_the_rows_with_the_flush(buffered, weights):
    version, url = weights
    for _ in range(7):
        fetch(url)
    assert counts(version) == (0, 0)  # buffered: no write to the rows per download
    assert flush_download_counts() == 7
    assert counts(version) == (7, 7)
    fetch(url)
    assert flush_download_counts() == 1 and counts(version) == (8, 8)


def test_a_flush_run_again_counts_nothing_twice(buffered, weights):
    version, url = weights
    for _ in range(3):
        fetch(url)
    assert versions_flush_downloads() == 3
    assert versions_flush_downloads() == 0
    assert counts(version) == (3, 3)
    # A worker that died after its commit, before deleting the batch: the batch is still in Redis, and its name is
    # recorded, so the next flush deletes it without folding it again.
    batch = DownloadFlush.objects.get().batch
    client = _redis()
    client.hset(batch, str(version.pk), 3)
    client.sadd(f"{_pending('version')}:batches", batch)
    assert versions_flush_downloads() == 0
    assert counts(version) == (3, 3) and not client.exists(batch)


def test_a_flush_that_fails_midway_leaves_its_batch_to_the_next(buffered, weights):
    version, url = weights
    for _ in range(4):
        fetch(url)

    def crash(**kwargs: object) -> None:
        versions_add_downloads(**kwargs)
        raise RuntimeError("the worker dies before its commit")

    with pytest.raises(RuntimeError):
        flush_downloads("version", apply=crash)
    assert counts(version) == (0, 0)  # rolled back with the batch's record
    fetch(url)  # counted in a new hash while the sealed batch waits
    assert versions_flush_downloads() == 5
    assert counts(version) == (5, 5)


def test_a_download_while_redis_is_down_is_served_and_counted_in_its_row(weights, settings):
    version, _ = weights
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": nobody,
                                   "KEY_PREFIX": "down"}}
    with pytest.raises(redis.ConnectionError):
        cache.add("probe", 1)  # a real outage: nothing listens there
    fetch(f"/adapters/alice/tool/v/1/files/{WEIGHTS}")  # the page's download link: no throttle counts in Redis
    assert counts(version) == (1, 1)

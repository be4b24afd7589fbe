"""What counts as a download: a GET from byte 0, once per client and item in DOWNLOAD_DEDUP_SECONDS."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from hub.catalog.models import Repository, Version
from hub.catalog.services import versions_flush_downloads
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db
WEIGHTS = "adapter_model.safetensors"


def fetch(path: str, *, user=None, range_: str = "bytes=0-99", **meta) -> None:
    """One download request; the body is read to its end, as a server does (the count comes after it)."""
    client = Client(REMOTE_ADDR=meta.pop("REMOTE_ADDR", "127.0.0.1"))
    if user is not None:
        client.force_login(user)
    response = client.get(path, HTTP_RANGE=range_, **meta)
    assert response.status_code in (200, 206), response.content
    b"".join(response.streaming_content)


@pytest.fixture
def weights_url(make_user, make_version) -> tuple[Version, str]:
    version = make_version(make_user("alice"), "tool")
    return version, f"/api/v1/adapters/alice/tool/versions/1/files/{WEIGHTS}"


def counts(version: Version) -> tuple[int, int]:
    """The version's and its repository's downloads, once the buffered ones are folded (the beat's flush)."""
    versions_flush_downloads()
    return Version.objects.get(pk=version.pk).downloads, Repository.objects.get(pk=version.repository_id).downloads


def test_ranged_requests_from_byte_0_count_once_per_client(weights_url, make_user):
    version, url = weights_url
    for _ in range(20):
        fetch(url)
    assert counts(version) == (1, 1)
    for _ in range(5):  # a forged header does not make a new client: the connection's address is used
        fetch(url, HTTP_X_FORWARDED_FOR=f"203.0.113.{uuid.uuid4().int % 250}")
    assert counts(version) == (1, 1)
    fetch(url, REMOTE_ADDR="192.0.2.7")  # another address
    assert counts(version) == (2, 2)
    bob = make_user("bob")
    for _ in range(3):  # a signed-in user counts once, whichever address they come from
        fetch(url, user=bob, REMOTE_ADDR=f"192.0.2.{uuid.uuid4().int % 250}")
    assert counts(version) == (3, 3)
    fetch(f"/adapters/alice/tool/v/1/files/{WEIGHTS}", user=bob)  # the page's download link is the same item
    assert counts(version) == (3, 3)


def test_each_item_counts_for_itself_and_no_window_counts_every_download(weights_url, make_user, make_version,
                                                                         settings):
    version, url = weights_url
    other = make_version(make_user("carol"), "other")
    fetch(url)
    fetch(f"/api/v1/adapters/carol/other/versions/1/files/{WEIGHTS}")
    assert counts(version) == (1, 1) and counts(other) == (1, 1)
    settings.DOWNLOAD_DEDUP_SECONDS = 0
    for _ in range(3):
        fetch(url)
    assert counts(version) == (4, 4)


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(weights_url, settings):
    version, url = weights_url
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    fetch(url, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")
    fetch(url, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1")  # the client's own entry is ignored
    assert counts(version) == (1, 1)
    fetch(url, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert counts(version) == (2, 2)


def test_the_dedup_cache_is_shared_between_processes():
    """Several web processes must see each other's keys: the cache is Redis or files, never per process."""
    key = f"shared-{uuid.uuid4().hex}"
    assert cache.add(key, 1, timeout=60)
    script = ("import sys, django; django.setup(); from django.conf import settings; "
              "settings.CACHES['default']['KEY_PREFIX'] = sys.argv[1]; from django.core.cache import cache; "
              "print(cache.add(sys.argv[2], 1, timeout=60))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings", "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "NOMOAT_DATA_DIR": str(settings.DATA_DIR)}
    other = subprocess.run([sys.executable, "-c", script, settings.CACHES["default"]["KEY_PREFIX"], key],
                           env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "False"  # the key added here is there


"""What the routes rest on: presigned blob stores, and resolvers for read-only repositories beyond the catalog."""

from __future__ import annotations

import hashlib
import io

import pytest
import requests
from django.utils import timezone

from hub.catalog.downloads import serve_blob
from hub.catalog.services import blob_put_stream
from hub.hfcompat import selectors
from tests.hfcompat.test_hub_client import assert_downloads

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_presigning_store_redirects_the_download_not_the_metadata(hub_client, live_server, settings, s3_server,
                                                                    tmp_path, make_user, make_version):
    import boto3

    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket="hf-presign")
    settings.BLOB_STORE, settings.S3_ENDPOINT_URL = "s3://hf-presign", s3_server
    settings.S3_PRESIGN_DOWNLOADS, settings.BLOB_CACHE_DIR = True, tmp_path / "blob-cache"
    weights = b"presigned weights " * 500
    version = make_version(make_user("alice"), "sql-helper", files={"adapter_model.safetensors": weights})
    url = f"{live_server.url}/alice/sql-helper/resolve/main/adapter_model.safetensors"

    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(weights))
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(s3_server)
    assert redirect.headers["X-Repo-Commit"] == version.commit_sha
    assert redirect.headers["X-Linked-Etag"] == f'"{hashlib.sha256(weights).hexdigest()}"'
    assert redirect.headers["X-Linked-Size"] == str(len(weights))

    got = hub_client("""
        result = open(hf_hub_download("alice/sql-helper", "adapter_model.safetensors"), "rb").read().hex()
    """)
    assert bytes.fromhex(got) == weights
    # The redirect above counted (after its response); the client's own GET from the same address did not again.
    assert_downloads("sql-helper", 1)


def test_a_registered_resolver_serves_its_own_read_only_repositories(hub_client, monkeypatch):
    """How a built stack will appear as the model repo `stacks/<hash>`: one resolver, no new routes."""
    blob = blob_put_stream(stream=io.BytesIO(b"stacked weights " * 100))
    merged = selectors.HubFile(path="model.safetensors", sha256=blob.sha256, size=blob.size)

    def stacks(*, user, repo_type, namespace, name, revision):
        if (repo_type, namespace, name) != ("model", "stacks", "c0ffee"):
            return None
        return selectors.Revision(
            repo_type="model", repo_id="stacks/c0ffee", sha="5" * 40, files=(merged,), author="nomoat",
            serve=lambda request, file: serve_blob(request, sha256=file.sha256, size=file.size, filename=file.path),
            created_at=timezone.now(), last_modified=timezone.now(),
        )

    monkeypatch.setattr(selectors, "_resolvers", list(selectors._resolvers))
    selectors.register_resolver(stacks)
    got = hub_client("""
        result = {
            "sha": api.model_info("stacks/c0ffee").sha,
            "files": api.list_repo_files("stacks/c0ffee"),
            "body": open(hf_hub_download("stacks/c0ffee", "model.safetensors"), "rb").read().decode(),
            "unknown": error(lambda: api.model_info("stacks/beef")),
        }
    """)
    assert got == {"sha": "5" * 40, "files": ["model.safetensors"], "body": "stacked weights " * 100,
                   "unknown": ["RepositoryNotFoundError", 404]}


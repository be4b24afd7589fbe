"""Both blob store backends, the filesystem one and S3 against a real S3-protocol server."""

from __future__ import annotations

import hashlib
import io
import uuid

import boto3
import pytest

from hub.catalog.blobstore import BlobIntegrityError, BlobNotFound, FileBlobStore, S3BlobStore


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"nomoat-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, "blobs", endpoint_url=endpoint, cache_dir=tmp_path / "cache")


DATA = bytes(range(256)) * 5000  # 1.28 MB: more than one streaming chunk
SHA = hashlib.sha256(DATA).hexdigest()


def test_put_addresses_content_by_sha256_and_reads_back(store):
    blob = store.put_stream(io.BytesIO(DATA))
    assert (blob.sha256, blob.size) == (SHA, len(DATA))
    assert store.exists(SHA) and store.size(SHA) == len(DATA)
    assert b"".join(store.read_range(SHA)) == DATA
    assert store.local_path(SHA).read_bytes() == DATA


def test_identical_content_is_stored_once(store):
    first = store.put_stream(io.BytesIO(DATA))
    second = store.put_stream(io.BytesIO(DATA))
    assert first == second
    if isinstance(store, FileBlobStore):
        assert len(list(store.root.rglob(SHA))) == 1
        assert not list((store.root / "tmp").iterdir())
    else:
        keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
        assert keys == [store._key(SHA)]


@pytest.mark.parametrize(("start", "end"), [(0, 0), (10, 99), (len(DATA) - 5, None), (1_048_570, 1_048_600)])
def test_byte_ranges(store, start, end):
    store.put_stream(io.BytesIO(DATA))
    expected = DATA[start : (None if end is None else end + 1)]
    assert b"".join(store.read_range(SHA, start, end)) == expected


def test_wrong_expected_hash_commits_nothing(store):
    with pytest.raises(BlobIntegrityError, match="expected"):
        store.put_stream(io.BytesIO(DATA), expected_sha256="0" * 64)
    assert not store.exists(SHA)
    if isinstance(store, FileBlobStore):
        assert not list((store.root / "tmp").iterdir())


def test_failed_stream_leaves_no_partial_blob(store):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 1000:
                raise ConnectionError("client went away")
            return super().read(min(n, 600) if n and n > 0 else 600)

    with pytest.raises(ConnectionError):
        store.put_stream(Broken(DATA))
    assert not store.exists(SHA)
    if isinstance(store, FileBlobStore):
        assert not list((store.root / "tmp").iterdir())


def test_missing_blob_and_bad_address(store):
    with pytest.raises(BlobNotFound):
        store.size("a" * 64)
    with pytest.raises(BlobNotFound):
        b"".join(store.read_range("b" * 64))
    with pytest.raises(ValueError, match="sha256"):
        store.exists("../../etc/passwd")


def test_s3_presigned_download_url(s3_server, tmp_path):
    bucket = f"nomoat-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    store = S3BlobStore(bucket, "", endpoint_url=s3_server, cache_dir=tmp_path, presign=True)
    store.put_stream(io.BytesIO(DATA))
    import requests

    url = store.download_url(SHA, "w.safetensors")
    response = requests.get(url, headers={"Range": "bytes=5-9"}, timeout=10)
    assert response.status_code == 206 and response.content == DATA[5:10]

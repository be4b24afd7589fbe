"""What an outage turns into, piece by piece and quickly (no cluster): the blob stores' errors when their storage is
gone, the hub's 503 answers (JSON for the API, a page for people, both with Retry-After, the page rendered without
the database), and the CLI coming back when a 503 says to. tests/faults/test_faults.py runs the real outages."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from hub.catalog.blobstore import BlobNotFound, BlobStoreUnavailable, FileBlobStore, S3BlobStore
from hub.core.tasks import failures_recorded
from hub.middleware import ClientErrorMiddleware
from nomoat_cli import client as cli_client
from nomoat_cli.client import Client
from nomoat_cli.errors import ApiError
from tests.conftest import free_port

# --- blob stores -------------------------------------------------------------------------------------------------


def test_a_file_store_whose_directory_is_gone_is_unavailable_not_empty(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    stored = store.put_stream(BytesIO(b"weights"))
    with pytest.raises(BlobNotFound):
        store.read_range("0" * 64)  # an unknown blob in a store that is there
    shutil.rmtree(tmp_path / "blobs")  # as when its volume is unmounted
    for call in (lambda: store.put_stream(BytesIO(b"more")), lambda: store.read_range(stored.sha256),
                 lambda: store.size(stored.sha256), lambda: store.local_path(stored.sha256)):
        with pytest.raises(BlobStoreUnavailable) as refused:
            call()
        assert refused.value.status == 503 and refused.value.code == "blob_store_unavailable"
        assert str(tmp_path / "blobs") in refused.value.message and refused.value.retry_after > 0


def test_an_s3_store_nobody_listens_at_is_unavailable_after_bounded_retries(tmp_path: Path, monkeypatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    store = S3BlobStore("bucket", "blobs", endpoint_url=f"http://127.0.0.1:{free_port()}", cache_dir=tmp_path,
                        connect_timeout=1, read_timeout=1, max_attempts=2)
    with pytest.raises(BlobStoreUnavailable) as refused:
        store.put_stream(BytesIO(b"weights"))
    assert "EndpointConnectionError" in refused.value.message and "storing a file" in refused.value.message
    with pytest.raises(BlobStoreUnavailable):
        store.read_range("a" * 64)


def test_a_task_interrupted_by_an_outage_records_no_verdict() -> None:
    recorded: list[object] = []
    with pytest.raises(BlobStoreUnavailable), failures_recorded(recorded.append, name="validation"):
        raise BlobStoreUnavailable("S3", "reading", ConnectionRefusedError())
    assert recorded == []  # left claimed: the lease lapses and the requeue sweep hands it out again


# --- the hub's answers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection already closed")])
def test_a_database_outage_answers_the_api_with_503_json_and_retry_after(error: Exception, settings) -> None:
    settings.OUTAGE_RETRY_AFTER_SECONDS = 7
    request = RequestFactory().get("/api/v1/adapters")
    response = ClientErrorMiddleware(lambda r: None).process_exception(request, error)
    assert response.status_code == 503 and response["Retry-After"] == "7"
    body = json.loads(response.content)["error"]
    assert body["code"] == "database_unavailable" and "send it again in 7 s" in body["message"]


def test_a_database_outage_answers_a_page_with_503_rendered_without_the_database(settings) -> None:
    # No django_db mark: any query while rendering would raise here instead of answering.
    settings.OUTAGE_RETRY_AFTER_SECONDS = 5
    request = RequestFactory().get("/adapters/")
    response = ClientErrorMiddleware(lambda r: None).process_exception(request, OperationalError("refused"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert b"Service Unavailable" in response.content and b"database cannot be reached" in response.content


def test_a_blob_store_outage_answers_503_with_retry_after(settings) -> None:
    settings.OUTAGE_RETRY_AFTER_SECONDS = 3
    request = RequestFactory().get("/api/v1/adapters/a/b/versions/1/files/x")
    error = BlobStoreUnavailable("S3 bucket b", "reading", ConnectionRefusedError("refused"))
    response = ClientErrorMiddleware(lambda r: None).process_exception(request, error)
    assert response.status_code == 503 and response["Retry-After"] == "3"
    assert json.loads(response.content)["error"]["code"] == "blob_store_unavailable"


# --- the CLI -----------------------------------------------------------------------------------------------------


class _Hub(http.server.BaseHTTPRequestHandler):
    """Answers the first `refusals` POSTs 503 (with Retry-After unless `retry_after` is None), then 201."""

    refusals = 0
    retry_after: str | None = "1"
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(self.path)
        refuse = len(self.seen) <= self.refusals
        body = json.dumps({"error": {"code": "database_unavailable", "message": "down"}} if refuse else {"id": 1})
        self.send_response(503 if refuse else 201)
        if refuse and self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub_answering() -> Iterator[type[_Hub]]:
    handler = type("Handler", (_Hub,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    server.shutdown()
    server.server_close()


def test_the_cli_sends_a_post_again_when_a_503_says_when(hub_answering) -> None:
    hub_answering.refusals = 2
    response = Client(hub_answering.url, "nmt_x").post_json("api/v1/uploads", {"filename": "a", "size": 1})
    assert response.status_code == 201 and len(hub_answering.seen) == 3


def test_the_cli_never_repeats_a_post_on_a_503_without_retry_after(hub_answering) -> None:
    hub_answering.refusals, hub_answering.retry_after = 5, None
    with pytest.raises(ApiError) as refused:
        Client(hub_answering.url, "nmt_x").post_json("api/v1/uploads", {})
    assert refused.value.status == 503 and len(hub_answering.seen) == 1


def test_the_cli_gives_up_once_the_outage_outlasts_its_patience(hub_answering, monkeypatch) -> None:
    monkeypatch.setattr(cli_client, "OUTAGE_WAIT_SECONDS", 1.5)
    hub_answering.refusals = 100
    with pytest.raises(ApiError) as refused:
        Client(hub_answering.url, "nmt_x").post_json("api/v1/uploads", {})
    assert refused.value.status == 503 and refused.value.retry_after == 1 and 1 <= len(hub_answering.seen) <= 3


# --- outside any view --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_session_save_that_meets_a_database_outage_answers_503_not_500(settings) -> None:
    """The sign-in page touches no table; with CSRF_USE_SESSIONS its token goes into a new session, saved in
    SessionMiddleware.process_response, after every view and middleware hook that handles errors. The database
    connection is cut off beforehand (as PostgreSQL does when it shuts down), so that save is what meets the outage."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("cuts its own PostgreSQL connection off with pg_terminate_backend")
    settings.OUTAGE_RETRY_AFTER_SECONDS = 4
    client = Client(raise_request_exception=False)  # answer as a server does, instead of raising in the test
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/login/").status_code == 200
    assert not queries.captured_queries  # without a session to save, the page needs no database
    settings.CSRF_USE_SESSIONS = True
    import psycopg

    connection.ensure_connection()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (connection.connection.info.backend_pid,))
    try:
        response = client.get("/login/")
    finally:
        connection.close()  # the cut-off connection; the next query opens a new one
    assert response.status_code == 503 and response["Retry-After"] == "4"
    assert b"database cannot be reached" in response.content

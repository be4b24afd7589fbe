"""Conditional GETs of the catalog's reads (weak ETags, 304, Vary), the anonymous cache answering before Django's
ASGI handler, and downloads handed to the proxy with X-Accel-Redirect."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.blobstore import get_blob_store
from hub.catalog.services import versions_flush_downloads
from hub.core.anoncache import HIT_HEADER, AnonymousReadCacheApp

pytestmark = pytest.mark.embedded

READS = ["/api/v1/adapters", "/api/v1/adapters?tag=sql", "/api/v1/adapters/alice/sql",
         "/api/v1/adapters/alice/sql/versions/1", "/api/v1/base-models", "/api/models/alice/sql", "/api/models"]


@pytest.fixture
def cache_on(settings) -> None:
    settings.ANONYMOUS_CACHE_SECONDS = 30


@pytest.mark.django_db
@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_each_read_has_a_weak_etag_answers_304_and_a_change_gives_a_new_one(make_user, make_version, settings,
                                                                           cached):
    settings.ANONYMOUS_CACHE_SECONDS = 30 if cached else 0
    alice = make_user("alice")
    first = make_version(alice, "sql")
    client = APIClient()
    before = {}
    for path in READS:
        response = client.get(path)
        etag = response["ETag"]
        assert response.status_code == 200 and etag.startswith('W/"'), (path, etag)
        # The caller decides what it sees (an owner sees drafts); the hub's own API also renders per Accept.
        varies = {"Authorization", "Cookie", *(["Accept"] if path.startswith("/api/v1/") else [])}
        assert varies <= {v.strip() for v in response["Vary"].split(",")}, path
        again = client.get(path, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag, path
        assert client.get(path, HTTP_IF_NONE_MATCH='W/"something-else"').status_code == 200, path
        before[path] = etag
    make_version(alice, "sql")  # a second version: the lists and the repository's reads show it
    first.license = "mit"  # saved (a signal), so the cached answers are stale too
    first.save(update_fields=["license"])
    for path in READS:
        if path == "/api/v1/base-models":
            continue  # shows no adapter
        changed = client.get(path, HTTP_IF_NONE_MATCH=before[path])
        assert changed.status_code == 200 and changed["ETag"] != before[path], path


@pytest.mark.django_db
def test_a_stored_answer_is_what_the_whole_chain_answered(make_user, make_version, cache_on):
    make_version(make_user("alice"), "sql")
    client = APIClient()
    miss, hit = client.get("/api/v1/adapters/alice/sql"), client.get("/api/v1/adapters/alice/sql")
    assert (miss[HIT_HEADER], hit[HIT_HEADER]) == ("miss", "hit")
    for header in ("ETag", "Vary", "X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options"):
        assert hit[header] == miss[header], header
    ranged = client.get("/api/v1/adapters/alice/sql", HTTP_RANGE="bytes=0-9")
    assert HIT_HEADER not in ranged  # a Range is the view's business


class Asgi:
    """Requests straight to an ASGI application, as gunicorn's worker sends them."""

    def __init__(self, app) -> None:
        self.app = app

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        # On a thread of its own: after a browser test, Playwright's event loop stays set on this one.
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, self._get(path, headers)).result()

    async def _get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
                 "headers": [(b"host", b"testserver"),
                             *((k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items())]}
        sent: list[dict] = []
        received = asyncio.Event()

        async def receive() -> dict:
            if not received.is_set():
                received.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect: Django cancels this once it has answered
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


@pytest.mark.django_db(transaction=True)  # Django's ASGI handler runs the views on a thread of its own
def test_a_hit_is_answered_before_djangos_asgi_handler(make_user, make_version, cache_on):
    from hub.asgi import django_application

    alice = make_user("alice")
    make_version(alice, "sql")
    reached = []

    async def django(scope, receive, send) -> None:
        reached.append(scope["path"])
        await django_application(scope, receive, send)

    server = Asgi(AnonymousReadCacheApp(django))
    status, miss, body = server.get("/api/models/alice/sql")
    assert status == 200 and miss.get("x-anonymous-cache") == "miss" and b'"alice/sql"' in body, (miss, body)
    status, hit, again = server.get("/api/models/alice/sql")
    assert status == 200 and hit["x-anonymous-cache"] == "hit" and again == body
    assert hit["etag"] == miss["etag"] and hit["content-security-policy"] == miss["content-security-policy"]
    status, not_modified, empty = server.get("/api/models/alice/sql", if_none_match=miss["etag"])
    assert (status, empty, not_modified["etag"]) == (304, b"", miss["etag"]) and "content-type" not in not_modified
    assert reached == ["/api/models/alice/sql"]  # only the miss reached Django

    token = api_token_create(user=alice, name="r").raw
    assert server.get("/api/models/alice/sql", authorization=f"Bearer {token}")[1].get("x-anonymous-cache") is None
    assert server.get("/api/models/alice/sql", cookie="sessionid=abc")[1].get("x-anonymous-cache") is None
    make_version(alice, "sql")
    status, after, _ = server.get("/api/models/alice/sql")
    assert after["x-anonymous-cache"] == "miss" and after["etag"] != miss["etag"]
    assert len(reached) == 4


@pytest.mark.django_db
def test_downloads_are_handed_to_the_proxy_with_x_accel_redirect(make_user, make_version, settings):
    settings.BLOB_ACCEL_REDIRECT = "/_blobs/"
    version = make_version(make_user("alice"), "sql")
    blob = version.files.get(path="adapter_model.safetensors").blob
    url = "/api/v1/adapters/alice/sql/versions/1/files/adapter_model.safetensors"
    client = APIClient()
    for extra in ({}, {"HTTP_RANGE": "bytes=10-19"}):  # the proxy applies the Range to the file it sends
        response = client.get(url, **extra)
        assert response.status_code == 200 and response.content == b"", extra
        target = response["X-Accel-Redirect"]
        assert target == f"/_blobs/{blob.sha256[:2]}/{blob.sha256[2:4]}/{blob.sha256}"
        store_root = get_blob_store().root
        assert (store_root / target.removeprefix("/_blobs/")).read_bytes()[:4] == b"weig"
        assert response["ETag"] == f'"{blob.sha256}"' and response["X-Content-Sha256"] == blob.sha256
        assert response["Content-Disposition"] == 'attachment; filename="adapter_model.safetensors"'
        assert response.get("Content-Length") in (None, "0")
    hf = client.get("/alice/sql/resolve/main/README.md")
    assert hf.status_code == 200 and hf["X-Accel-Redirect"].startswith("/_blobs/") and hf["X-Repo-Commit"]
    head = client.head(url)
    assert head.status_code == 200 and "X-Accel-Redirect" not in head and head["Content-Length"] == str(blob.size)
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"{blob.sha256}"').status_code == 304
    unsatisfiable = client.get(url, HTTP_RANGE=f"bytes={blob.size + 5}-")
    assert unsatisfiable.status_code == 416 and "X-Accel-Redirect" not in unsatisfiable
    settings.BLOB_ACCEL_REDIRECT = ""
    streamed = client.get(url)
    assert "X-Accel-Redirect" not in streamed and b"".join(streamed.streaming_content)[:4] == b"weig"


@pytest.mark.django_db
def test_small_files_are_cached_but_a_counted_download_always_reaches_the_counter(make_user, make_version,
                                                                                  cache_on):
    version = make_version(make_user("alice"), "sql")
    readme = [APIClient().get("/alice/sql/resolve/main/README.md") for _ in range(2)]
    assert [r[HIT_HEADER] for r in readme] == ["miss", "hit"]
    assert b"".join(readme[0].streaming_content) == readme[1].content and readme[1]["X-Repo-Commit"]
    url = "/api/v1/adapters/alice/sql/versions/1/files/adapter_model.safetensors"
    for i in range(5):  # five clients, each counted once
        weights = APIClient(REMOTE_ADDR=f"10.0.0.{i}").get(url)
        assert weights.status_code == 200 and HIT_HEADER not in weights
        b"".join(weights.streaming_content)  # counted once the body is sent
    versions_flush_downloads()
    version.refresh_from_db()
    assert version.downloads == 5

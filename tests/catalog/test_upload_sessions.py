"""Resumable upload sessions: per-user quotas, expiry of idle sessions and their .part files, chunk positions."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import UploadSession, Version
from hub.catalog.uploads import human_bytes

pytestmark = pytest.mark.django_db

GiB = 1024**3


def token_client(user) -> APIClient:
    return APIClient(headers={"Authorization": f"Bearer {api_token_create(user=user, name='t', scope='write').raw}"})


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path: Path) -> Path:
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


def open_session(client: APIClient, size: int, filename: str = "adapter_model.safetensors"):
    return client.post("/api/v1/uploads", {"filename": filename, "size": size}, format="json")


def put(client: APIClient, url: str, body: bytes, **headers: str):
    return client.put(url, body, content_type="application/octet-stream", **headers)


def age(session_id: str, seconds: int) -> None:
    UploadSession.objects.filter(pk=session_id).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_human_bytes_reads_like_the_settings() -> None:
    assert [human_bytes(n) for n in (100, 1536, 64 * 1024**2, 8 * GiB, 2 * 1024**4)] == [
        "100 bytes", "1.5 KiB", "64 MiB", "8 GiB", "2 TiB"]


def test_declared_bytes_are_capped_per_user_in_readable_units(make_user) -> None:
    """The report: 200 sessions of 2 GiB each were accepted. Now the fifth 2 GiB session passes 8 GiB and is refused."""
    alice, bob = make_user("alice"), make_user("bob")
    client = token_client(alice)
    for _ in range(4):
        assert open_session(client, 2 * GiB).status_code == 201
    refused = open_session(client, 2 * GiB)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "upload_quota_exceeded"
    assert error["message"] == ("adapter_model.safetensors: 2 GiB more would bring your open upload sessions to "
                                "10 GiB; at most 8 GiB per user (complete the open ones, or wait: idle ones expire "
                                "after 24 h)")
    assert UploadSession.objects.filter(owner=alice).count() == 4
    assert open_session(token_client(bob), 2 * GiB).status_code == 201  # a quota per user, not for the hub


def test_open_sessions_are_capped_per_user_and_completing_one_frees_a_slot(make_user, settings) -> None:
    settings.UPLOAD_SESSIONS_PER_USER = 3
    client = token_client(make_user("alice"))
    sessions = [open_session(client, 0).json() for _ in range(3)]
    refused = open_session(client, 0)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_upload_sessions"
    assert "; at most 3 per user" in refused.json()["error"]["message"]
    done = client.post(f"{sessions[0]['url']}/complete", {"sha256": hashlib.sha256(b"").hexdigest()}, format="json")
    assert done.json()["state"] == "complete"
    assert open_session(client, 0).status_code == 201


@pytest.mark.parametrize("ask", [
    lambda client, url: put(client, url, b"efgh", HTTP_CONTENT_RANGE="bytes 4-7/8"),
    lambda client, url: client.get(url),
    lambda client, url: client.post(f"{url}/complete", {"sha256": "0" * 64}, format="json"),
], ids=["put", "get", "complete"])
def test_an_expired_session_answers_404_and_its_part_file_goes(make_user, upload_dir: Path, ask) -> None:
    client = token_client(make_user("alice"))
    session = open_session(client, 8).json()
    assert put(client, session["url"], b"abcd", HTTP_CONTENT_RANGE="bytes 0-3/8").json()["offset"] == 4
    part = upload_dir / f"{session['id']}.part"
    assert part.read_bytes() == b"abcd"
    age(session["id"], django_settings.UPLOAD_SESSION_TTL_SECONDS + 1)

    response = ask(client, session["url"])
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "upload_expired"
    assert f"upload session {session['id']} expired after 24 h idle; start a new upload" in response.json()["error"]["message"]
    assert not part.exists() and not UploadSession.objects.exists()  # deleted on the spot, not at the next beat
    assert client.get(session["url"]).status_code == 404


def test_expired_sessions_do_not_count_against_the_quota(make_user, settings) -> None:
    settings.UPLOAD_SESSIONS_PER_USER = 1
    client = token_client(make_user("alice"))
    first = open_session(client, 10).json()
    assert open_session(client, 10).status_code == 429
    age(first["id"], settings.UPLOAD_SESSION_TTL_SECONDS + 1)
    assert open_session(client, 10).status_code == 201
    assert not UploadSession.objects.filter(pk=first["id"]).exists()


def test_a_completed_session_that_expired_cannot_make_a_version(make_user) -> None:
    alice = make_user("alice")
    client = token_client(alice)
    session = open_session(client, 0).json()
    client.post(f"{session['url']}/complete", {"sha256": hashlib.sha256(b"").hexdigest()}, format="json")
    age(session["id"], django_settings.UPLOAD_SESSION_TTL_SECONDS + 1)
    response = client.post("/api/v1/adapters/alice/x/versions", {"uploads": {"adapter_model.safetensors": session["id"]}},
                           format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "upload_expired"
    assert "adapter_model.safetensors: upload session" in response.json()["error"]["message"]
    assert not Version.objects.exists()


def test_the_beat_expires_idle_sessions_and_stray_part_files(make_user, settings, upload_dir: Path) -> None:
    from hub.catalog.tasks import expire_upload_sessions
    from hub.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "catalog.expire_upload_sessions")
    assert entry["schedule"] == settings.UPLOAD_SESSION_EXPIRE_EVERY_SECONDS and entry["task"] in app.tasks
    client = token_client(make_user("alice"))
    idle, busy = open_session(client, 4).json(), open_session(client, 4).json()
    age(idle["id"], settings.UPLOAD_SESSION_TTL_SECONDS + 1)
    age(busy["id"], settings.UPLOAD_SESSION_TTL_SECONDS - 60)
    stale_stray, fresh_stray = upload_dir / f"{uuid.uuid4()}.part", upload_dir / f"{uuid.uuid4()}.part"
    stale_stray.write_bytes(b"x")
    fresh_stray.write_bytes(b"x")
    old = time.time() - settings.UPLOAD_SESSION_TTL_SECONDS - 1
    os.utime(stale_stray, (old, old))

    assert expire_upload_sessions() == 1
    assert list(UploadSession.objects.values_list("pk", flat=True)) == [uuid.UUID(busy["id"])]
    assert sorted(p.name for p in upload_dir.iterdir()) == sorted([f"{busy['id']}.part", fresh_stray.name])


@pytest.mark.parametrize(("url_suffix", "headers", "code", "fragment"), [
    ("?offset=abc", {}, "bad_offset", 'offset "abc" is not a whole number'),
    ("?offset=" + "9" * 5000, {}, "bad_offset", "is not a whole number"),
    ("", {"HTTP_CONTENT_RANGE": "bytes 0-3/" + "9" * 5000}, "bad_content_range", "is not `bytes start-end/total`"),
    ("", {"HTTP_CONTENT_RANGE": "bytes " + "1" * 3000 + "-3/8"}, "bad_content_range", "is not `bytes start-end/total`"),
    ("", {"HTTP_CONTENT_RANGE": "bytes 3-0/8"}, "bad_content_range", "ends at byte 0, before its start 3"),
    ("", {"HTTP_CONTENT_RANGE": "bytes=0-3/8"}, "bad_content_range", "is not `bytes start-end/total`"),
    ("", {"HTTP_CONTENT_RANGE": "bytes 0-3/9"}, "size_mismatch",
     "adapter_model.safetensors: Content-Range says the file is 9 bytes but the session declared 8"),
])
def test_bad_chunk_positions_are_400_json(make_user, url_suffix, headers, code, fragment) -> None:
    client = token_client(make_user("alice"))
    session = open_session(client, 8).json()
    response = put(client, session["url"] + url_suffix, b"abcd", **headers)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code and fragment in response.json()["error"]["message"]
    assert client.get(session["url"]).json()["offset"] == 0


def test_an_unknown_total_and_a_query_offset_still_work(make_user) -> None:
    client = token_client(make_user("alice"))
    session = open_session(client, 8).json()
    assert put(client, session["url"], b"abcd", HTTP_CONTENT_RANGE="bytes 0-3/*").json()["offset"] == 4
    assert put(client, f"{session['url']}?offset=4", b"efgh").json()["offset"] == 8
    done = client.post(f"{session['url']}/complete", {"sha256": hashlib.sha256(b"abcdefgh").hexdigest()}, format="json")
    assert done.json()["state"] == "complete"

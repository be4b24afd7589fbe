"""Anonymous catalog reads come from the shared cache, never leak what only a signed-in caller may see, and a
change (a takedown, a new version) is seen by the very next request. Conditional GETs answer 304."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import Repository, VersionState
from hub.catalog.services import version_set_state
from hub.core import anoncache
from hub.core.anoncache import HIT_HEADER

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture(autouse=True)
def cache_on(settings) -> None:
    settings.ANONYMOUS_CACHE_SECONDS = 30


def names(response) -> list[str]:
    return [r["full_name"] for r in response.json()["results"]]


def test_a_second_anonymous_read_is_served_from_the_cache(make_user, make_version):
    make_version(make_user("alice"), "sql")
    anonymous = APIClient()
    first, second = anonymous.get("/api/v1/adapters"), anonymous.get("/api/v1/adapters")
    assert (first[HIT_HEADER], second[HIT_HEADER]) == ("miss", "hit")
    assert second.content == first.content and names(second) == ["alice/sql"]
    assert "Content-Security-Policy" in second  # the policy is the response's own, not a stored one
    hf = [anonymous.get("/api/models/alice/sql") for _ in range(2)]
    assert [r[HIT_HEADER] for r in hf] == ["miss", "hit"] and hf[1].json()["id"] == "alice/sql"


def test_a_takedown_is_seen_by_the_next_anonymous_request(make_user, make_version):
    version = make_version(make_user("alice"), "sql")
    anonymous = APIClient()
    assert names(anonymous.get("/api/v1/adapters")) == ["alice/sql"]
    assert anonymous.get("/api/v1/adapters/alice/sql").status_code == 200
    version_set_state(version=version, state=VersionState.UNPUBLISHED, reason="licence violation")
    after = anonymous.get("/api/v1/adapters")
    assert after[HIT_HEADER] == "miss" and names(after) == []
    assert anonymous.get("/api/v1/adapters/alice/sql").status_code == 404


def test_what_an_owner_sees_is_never_stored_for_anonymous_callers(make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "public")
    make_version(alice, "draft", state=VersionState.PENDING_REVIEW)
    owner = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='r').raw}"})
    for _ in range(2):
        mine = owner.get("/api/v1/adapters")
        assert sorted(names(mine)) == ["alice/draft", "alice/public"] and HIT_HEADER not in mine
    session = APIClient()
    session.force_login(alice)
    assert HIT_HEADER not in session.get("/api/v1/adapters")
    anonymous = APIClient()
    assert names(anonymous.get("/api/v1/adapters")) == ["alice/public"]
    assert anonymous.get("/api/v1/adapters/alice/draft").status_code == 404
    assert HIT_HEADER not in anonymous.get("/api/v1/adapters/alice/draft")


def test_lists_and_details_answer_304_to_a_client_that_has_them(make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "sql")
    client = APIClient()
    etags = {}
    for path in ("/api/v1/adapters", "/api/v1/adapters/alice/sql", "/api/v1/adapters/alice/sql/versions/1",
                 "/api/v1/base-models", "/api/models/alice/sql"):
        etags[path] = client.get(path)["ETag"]
        again = client.get(path, HTTP_IF_NONE_MATCH=etags[path])
        assert again.status_code == 304 and again.content == b"", path
    make_version(alice, "sql")  # a second version changes the detail's body, so its ETag
    changed = client.get("/api/v1/adapters/alice/sql", HTTP_IF_NONE_MATCH=etags["/api/v1/adapters/alice/sql"])
    assert changed.status_code == 200 and changed["ETag"] != etags["/api/v1/adapters/alice/sql"]


def test_an_answer_past_its_time_is_recomputed_by_one_request_while_the_others_get_it(make_user, make_version,
                                                                                    monkeypatch, settings):
    version = make_version(make_user("alice"), "sql")
    clock = SimpleNamespace(time=time.time)
    monkeypatch.setattr(anoncache, "time", clock)
    headers = {"HTTP_HOST": "testserver", "HTTP_ACCEPT": "application/json"}
    mark = anoncache._key("GET", {"host": "testserver", "accept": "application/json"}, "http", "/api/v1/adapters",
                          "") + anoncache.REFRESHING
    anonymous = APIClient()

    def summary() -> tuple[str, str]:
        response = anonymous.get("/api/v1/adapters", **headers)
        return response[HIT_HEADER], response.json()["results"][0]["summary"]

    Repository.objects.filter(pk=version.repository_id).update(summary="before")  # no signal: the cache can't know
    assert summary() == ("miss", "before")
    Repository.objects.filter(pk=version.repository_id).update(summary="after")
    assert summary() == ("hit", "before")  # still within ANONYMOUS_CACHE_SECONDS
    clock.time = lambda: time.time() + settings.ANONYMOUS_CACHE_SECONDS + 1
    cache.add(mark, 1)  # another request is recomputing it: this one is answered with what is stored
    assert summary() == ("hit", "before")
    cache.delete(mark)
    assert summary() == ("miss", "after")  # this request took the mark and recomputed it
    assert cache.get(mark) is None  # and gave the mark back
    # A change the hub knows of (a new generation) is never answered from before it, refresh mark or not.
    cache.add(mark, 1)
    Repository.objects.filter(pk=version.repository_id).update(summary="changed")
    version.save()
    assert summary() == ("miss", "changed")

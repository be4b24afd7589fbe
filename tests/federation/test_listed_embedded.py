"""A dataset listed from a peer followed for metadata, on whichever database the run has (also the embedded
default, SQLite: `-m embedded`): found by the catalog's search and its hub filter, and its page names where its
files are instead of previewing rows it does not hold. The Create is written out as another hub would send it;
nothing is fetched in metadata mode, so no origin server is needed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.catalog.models import VersionState
from hub.federation.mirroring import activity_received, mirror_namespace
from hub.federation.models import Peer, PeerMode

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
ORIGIN = "http://127.0.0.9:8123"


def dataset_create() -> dict:
    """The Create a hub at ORIGIN sends for version 1 of its dataset carol/tide-tables."""
    page = f"{ORIGIN}/datasets/carol/tide-tables/v/1"
    files = (("README.md", "1" * 64, 120), ("train.jsonl", "2" * 64, 4096), ("test.jsonl", "3" * 64, 512))
    return {"type": "Create", "id": f"{ORIGIN}/federation/activities/1", "actor": f"{ORIGIN}/federation/users/carol",
            "published": "2026-12-01T10:00:00+00:00",
            "object": {"type": "Document", "id": page, "url": page, "kind": "dataset", "version": 1,
                       "license": "cc-by-4.0", "summary": "Hourly sea levels of a harbour",
                       "card": "---\nlicense: cc-by-4.0\n---\n\n# Tide tables\n\nMeasured at the pier of Oyster Bay.\n",
                       "repository": {"owner": "carol", "name": "tide-tables",
                                      "url": f"{ORIGIN}/datasets/carol/tide-tables"},
                       "files": [{"path": path, "sha256": sha, "size": size,
                                  "url": f"{ORIGIN}/api/v1/datasets/carol/tide-tables/versions/1/files/{path}"}
                                 for path, sha, size in files]}}


def datasets_found(**params: str) -> list[str]:
    response = APIClient().get("/api/v1/datasets", params)
    assert response.status_code == 200, response.content
    return [r["full_name"] for r in response.json()["results"]]


def test_a_listed_dataset_is_searched_and_its_page_says_where_its_files_are():
    peer = Peer.objects.create(base_url=ORIGIN, actor_url=f"{ORIGIN}/federation/actor", mode=PeerMode.METADATA)
    activity_received(peer=peer, activity=dataset_create())
    full_name = f"{mirror_namespace('carol', ORIGIN)}/tide-tables"

    # Search: by name, by summary, by a word only its card has, with the hub filter; not among the adapters.
    for query in ({"search": "tide"}, {"search": "sea levels"}, {"search": "oyster"}, {"hub": ORIGIN},
                  {"search": "pier", "hub": ORIGIN}):
        assert datasets_found(**query) == [full_name], query
    assert datasets_found(search="oyster", hub="local") == []
    assert datasets_found(search="volcano") == []
    assert APIClient().get("/api/v1/adapters", {"search": "tide"}).json()["results"] == []
    detail = APIClient().get(f"/api/v1/datasets/{full_name}/versions/1").json()
    assert detail["state"] == VersionState.LISTED and detail["origin"]["hub"] == ORIGIN
    assert [f["path"] for f in detail["files"]] == ["README.md", "test.jsonl", "train.jsonl"]

    # Its page: listed from its origin, its files named with sizes and linked, no rows previewed (they are not
    # here) and no snippet to use it from this hub yet.
    page = APIClient().get(f"/datasets/{full_name}/v/1")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'Listed from <a href="{ORIGIN}"' in html and 'id="held-at-origin"' in html
    assert "a download is redirected there" in html and "Measured at the pier of Oyster Bay." in html
    for path in ("train.jsonl", "test.jsonl"):
        assert f"/api/v1/datasets/{full_name}/versions/1/files/{path}" in html
    assert 'id="rows"' not in html and 'id="use-this"' not in html
    assert full_name in APIClient().get("/datasets/", {"search": "oyster"}).content.decode()
    # A file of it redirects towards its origin, through the item's route.
    download = APIClient().get(f"/api/v1/datasets/{full_name}/versions/1/files/train.jsonl")
    assert download.status_code == 302 and download["Location"].startswith("/api/v1/federation/items/")
    assert APIClient().get(download["Location"])["Location"] == dataset_create()["object"]["files"][1]["url"]

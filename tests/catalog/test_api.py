"""REST API v1 over the catalog: listing, filters, search, pagination, visibility and downloads."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import Role
from hub.catalog.models import Repository, Version, VersionState
from hub.catalog.services import versions_flush_downloads

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    return {"alice": make_user("alice"), "bob": make_user("bob"), "mod": make_user("mod", role=Role.MODERATOR)}


def as_user(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["full_name"] for r in response.json()["results"]]


def test_base_models_list_and_detail(tiny_base_model):
    listing = APIClient().get("/api/v1/base-models")
    assert listing.status_code == 200
    [entry] = listing.json()["results"]
    assert entry["name"] == "nomoat/tiny-llama" and entry["architecture"] == "LlamaForCausalLM"
    shapes = entry["module_shapes"]
    assert shapes["model.layers.0.self_attn.q_proj"] == {"in": 64, "out": 64}
    assert shapes["model.layers.0.self_attn.k_proj"] == {"in": 64, "out": 32}  # GQA: 2 KV heads of 16
    files = {f["path"]: f for f in entry["files"]}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    download = APIClient().get("/api/v1/base-models/nomoat/tiny-llama/files/config.json")
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == files["config.json"]["sha256"]


def test_anonymous_sees_published_only_owner_and_moderator_see_more(people, make_version):
    make_version(people["alice"], "published-one")
    make_version(people["alice"], "pending-one", state=VersionState.PENDING_REVIEW)
    make_version(people["bob"], "bobs-rejected", state=VersionState.REJECTED)
    assert names(as_user().get("/api/v1/adapters")) == ["alice/published-one"]
    assert sorted(names(as_user(people["alice"]).get("/api/v1/adapters"))) == ["alice/pending-one", "alice/published-one"]
    assert names(as_user(people["bob"]).get("/api/v1/adapters")) == ["bob/bobs-rejected", "alice/published-one"]
    assert len(names(as_user(people["mod"]).get("/api/v1/adapters"))) == 3
    for client in (as_user(), as_user(people["bob"])):
        missing = client.get("/api/v1/adapters/alice/pending-one")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert client.get("/api/v1/adapters/alice/pending-one/versions/1/files/README.md").status_code == 404
    assert as_user(people["alice"]).get("/api/v1/adapters/alice/pending-one").status_code == 200
    assert as_user(people["mod"]).get("/api/v1/adapters/alice/pending-one/versions/1").json()["state"] == "pending_review"


def test_unpublished_versions_of_a_published_repository_stay_hidden(people, make_version):
    make_version(people["alice"], "mixed")
    make_version(people["alice"], "mixed", state=VersionState.PENDING_REVIEW)
    detail = as_user().get("/api/v1/adapters/alice/mixed").json()
    assert [v["number"] for v in detail["versions"]] == [1]
    assert as_user().get("/api/v1/adapters/alice/mixed/versions/2").status_code == 404
    assert [v["number"] for v in as_user(people["alice"]).get("/api/v1/adapters/alice/mixed").json()["versions"]] == [2, 1]


def test_filters_search_and_ordering(people, make_version, tiny_base_model):
    make_version(people["alice"], "sql-helper", body="Writes SQL queries from questions.", base_model=tiny_base_model)
    make_version(people["bob"], "poet", body="Writes sonnets about databases.",
                 files={"README.md": b"---\nlicense: mit\ntags: [poetry]\ntask: poetry\n---\nRhymes.\n",
                        "adapter_model.safetensors": b"x" * 10})
    Repository.objects.filter(name="poet").update(downloads=50)
    client = as_user()
    assert names(client.get("/api/v1/adapters", {"base_model": "nomoat/tiny-llama"})) == ["alice/sql-helper"]
    assert names(client.get("/api/v1/adapters", {"tag": "poetry"})) == ["bob/poet"]
    assert names(client.get("/api/v1/adapters", {"task": "text-generation"})) == ["alice/sql-helper"]
    assert names(client.get("/api/v1/adapters", {"owner": "bob"})) == ["bob/poet"]
    assert names(client.get("/api/v1/adapters", {"license": "mit"})) == ["bob/poet"]
    assert names(client.get("/api/v1/adapters", {"search": "SQL queries"})) == ["alice/sql-helper"]
    assert names(client.get("/api/v1/adapters", {"search": "rhymes"})) == ["bob/poet"]
    assert names(client.get("/api/v1/adapters", {"ordering": "downloads"})) == ["bob/poet", "alice/sql-helper"]
    assert names(client.get("/api/v1/adapters", {"ordering": "newest"})) == ["bob/poet", "alice/sql-helper"]
    bad = client.get("/api/v1/adapters", {"state": "bogus"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"
    assert names(client.get("/api/v1/datasets")) == []


def test_cursor_pagination_walks_every_item_once(people, make_version):
    for i in range(7):
        make_version(people["alice"], f"adapter-{i}")
    seen, url = [], "/api/v1/adapters?page_size=3"
    while url:
        page = as_user().get(url).json()
        seen += [r["full_name"] for r in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(f"alice/adapter-{i}" for i in range(7)) and len(seen) == 7


def test_file_listing_and_range_downloads(people, make_version):
    data = bytes(range(256)) * 40
    version = make_version(people["alice"], "ranged", files={"adapter_model.safetensors": data, "README.md": b"# hi"})
    base = "/api/v1/adapters/alice/ranged/versions/1/files"
    listing = {f["path"]: f for f in as_user().get(base).json()}
    sha = hashlib.sha256(data).hexdigest()
    assert listing["adapter_model.safetensors"] == {"path": "adapter_model.safetensors", "size": len(data), "sha256": sha,
                                                    "url": f"{base}/adapter_model.safetensors",
                                                    "torrent": f"/api/v1/blobs/{sha}/torrent",
                                                    "metalink": f"/api/v1/blobs/{sha}/meta4"}

    client = as_user()
    full = client.get(f"{base}/adapter_model.safetensors")
    assert full.status_code == 200 and b"".join(full.streaming_content) == data
    assert full["ETag"] == f'"{sha}"' and full["Content-Length"] == str(len(data)) and full["Accept-Ranges"] == "bytes"

    part = client.get(f"{base}/adapter_model.safetensors", HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and b"".join(part.streaming_content) == data[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}" and part["Content-Length"] == "100"
    tail = client.get(f"{base}/adapter_model.safetensors", HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == data[-10:]
    unsatisfiable = client.get(f"{base}/adapter_model.safetensors", HTTP_RANGE=f"bytes={len(data)}-")
    assert unsatisfiable.status_code == 416 and unsatisfiable["Content-Range"] == f"bytes */{len(data)}"
    assert client.get(f"{base}/adapter_model.safetensors", HTTP_IF_NONE_MATCH=f'"{sha}"').status_code == 304
    stale = client.get(f"{base}/adapter_model.safetensors", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200  # If-Range mismatch: the whole, current file
    head = client.head(f"{base}/adapter_model.safetensors")
    assert head.status_code == 200 and head["Content-Length"] == str(len(data)) and not head.content
    missing = client.get(f"{base}/nope.bin")
    assert missing.status_code == 404 and "nope.bin" in missing.json()["error"]["message"]

    versions_flush_downloads()  # the beat's flush folds the buffered downloads into the rows
    version.refresh_from_db()
    # Only GETs from byte 0 count (the full GET and the If-Range fallback), and once per client: one download.
    assert version.downloads == 1
    assert Repository.objects.get(name="ranged").downloads == 1
    b"".join(as_user(people["bob"]).get(f"{base}/README.md").streaming_content)
    version.refresh_from_db()
    assert version.downloads == 1  # the card is not the weights


def test_users_and_versions_endpoints(people, make_version):
    make_version(people["alice"], "v")
    users = as_user().get("/api/v1/users").json()["results"]
    assert {u["username"] for u in users} == {"alice", "bob", "mod"}
    assert as_user().get("/api/v1/users/alice").json()["role"] is None  # roles only to moderators (tests/security)
    versions = as_user().get("/api/v1/adapters/alice/v/versions").json()["results"]
    assert versions[0]["number"] == 1 and len(versions[0]["commit_sha"]) == 40
    assert versions[0]["card"]["license"] == "apache-2.0" and versions[0]["tags"] == ["demo", "sql"]


def test_anonymous_writes_are_refused_with_json(people, make_version):
    make_version(people["alice"], "v")
    response = as_user().delete("/api/v1/auth/tokens/1")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_openapi_schema_and_docs_page():
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/adapters/{owner}/{name}/versions/{number}/files/{path}" in paths
    assert APIClient().get("/api/v1/docs/").status_code == 200


def test_commit_sha_is_stable_and_distinct(people, make_version):
    one = make_version(people["alice"], "c")
    two = make_version(people["alice"], "c")
    assert one.commit_sha != two.commit_sha
    assert Version.objects.get(pk=one.pk).commit_sha == one.commit_sha


def test_lineage_comes_from_the_card(people, make_version):
    make_version(people["alice"], "instructions", kind="dataset",
                 files={"README.md": b"---\nlicense: cc-by-4.0\n---\n", "train.jsonl": b'{"text": "hi"}\n'})
    parent = make_version(people["alice"], "base-skill")
    card = (b"---\nlicense: mit\ndatasets: [alice/instructions, elsewhere/unknown]\nparent_adapters: alice/base-skill\n"
            b"tags: 5\n---\nBuilt on base-skill.\n")
    make_version(people["bob"], "child", files={"README.md": card, "adapter_model.safetensors": b"w"})
    lineage = as_user().get("/api/v1/adapters/bob/child/versions/1").json()["lineage"]
    assert lineage["training_datasets"] == ["alice/instructions"]
    assert lineage["parents"] == [str(parent)]
    page = APIClient().get("/adapters/bob/child").content.decode()
    assert "alice/instructions" in page and "alice/base-skill v1" in page, page

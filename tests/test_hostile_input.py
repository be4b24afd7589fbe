"""Input that once answered 500: every route answers it with a 4xx in its own error format.

API routes answer the hub's JSON error shape, the Hugging Face-compatible routes the Hub's (`{"error": "..."}`),
pages an HTML error page.
"""

from __future__ import annotations

import io

import pytest

from hub.accounts.models import Role
from hub.catalog.models import VersionState
from hub.catalog.services import blob_put_stream, version_set_state
from hub.stacks.services import stack_record_ready, stack_request

HUGE = "9" * 5000  # more digits than int() converts
WEIGHTS = b"stacked weights " * 64


def assert_api_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code


def assert_hf_error(response, status: int) -> None:
    """The Hub's shape, which huggingface_hub reads: a message in the body and in X-Error-Message."""
    assert response.status_code == status, response.content[:300]
    assert isinstance(response.json()["error"], str)
    assert response["X-Error-Message"]


def assert_page_error(response, status: int) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")


@pytest.fixture
def world(make_user, make_version, tiny_base_model):
    """alice's published adapter and dataset; a moderator; stacks that are ready, queued and withdrawn."""
    alice = make_user("alice")
    mod = make_user("mod", role=Role.MODERATOR)
    sql = make_version(alice, "sql", base_model=tiny_base_model)
    gone = make_version(alice, "gone", base_model=tiny_base_model)
    make_version(alice, "rows", kind="dataset", files={"README.md": b"# rows\n", "train.jsonl": b'{"text": "a"}\n'})
    blob = blob_put_stream(stream=io.BytesIO(WEIGHTS))

    def stack(adapter: str, weight: float, *, ready: bool):
        build, _ = stack_request(user=alice, request={"base_model": tiny_base_model.name,
                                                      "adapters": [{"adapter": adapter, "weight": weight}]})
        if ready:
            build = stack_record_ready(build=build, manifest={}, files={"model.safetensors": blob})
        return build.recipe_hash

    stacks = {"ready": stack("alice/sql", 1.0, ready=True), "queued": stack("alice/sql", 0.5, ready=False),
              "withdrawn": stack("alice/gone", 1.0, ready=True)}
    version_set_state(version=gone, state=VersionState.UNPUBLISHED, reason="taken down")
    return {"alice": alice, "mod": mod, "sql": sql, "stacks": stacks}


# --- a NUL character in the path or query string ----------------------------------------------------------------

FILTERS = ["search", "owner", "tag", "base_model", "license", "task"]
NUL_API = [f"/api/v1/{kind}?{f}=%00" for kind in ("adapters", "datasets") for f in FILTERS] + [
    "/api/v1/adapters/a%00/b",
    "/api/v1/adapters/alice/sql/versions/1/files/a%00b",
    "/api/v1/users/a%00b",
    "/api/v1/stacks/a%00b",
    "/api/v1/stacks?adapter=a%00/b",
    "/api/v1/adapters/a%00/b/evals",
    "/api/v1/moderation/queue?uploader=%00",
    "/api/v1/moderation/queue?base_model=%00",
    "/api/v1/moderation/audit?actor=%00",
    "/api/v1/moderation/audit.csv?action=%00",
    "/api/v1/reports?kind=%00",
]
NUL_HF = ["/api/models/a%00/b", "/api/datasets/a%00/b", "/api/models?search=%00", "/api/models?author=%00",
          "/a%00/b/resolve/main/x", "/alice/sql/resolve/main/a%00"]
NUL_PAGES = ["/adapters/a%00/b", "/adapters/?search=%00", "/datasets/?owner=%00", "/models/a%00/b",
             "/stacks/a%00b", "/stacks/?base_model=%00", "/moderation/?uploader=%00", "/moderation/audit?action=%00",
             "/moderation/users/a%00b"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_API)
def test_nul_on_api_routes_is_400_json(client, world, url):
    client.force_login(world["mod"])
    assert_api_error(client.get(url), 400, "nul_character")


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_HF)
def test_nul_on_hf_routes_is_400_in_the_hubs_format(client, world, url):
    assert_hf_error(client.get(url), 400)


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_PAGES)
def test_nul_on_pages_is_an_error_page(client, world, url):
    client.force_login(world["mod"])
    response = client.get(url)
    assert_page_error(response, 400)
    assert b"NUL" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [{"reason": "spam", "comment": "a\x00b"}, {"reason\x00": "spam"}])
def test_nul_in_a_page_form_is_an_error_page(client, world, fields):
    client.force_login(world["mod"])
    assert_page_error(client.post(f"/report/adapter/{world['sql'].pk}", fields), 400)


@pytest.mark.django_db
def test_nul_in_an_api_form_is_400_json(client, world):
    client.force_login(world["mod"])
    response = client.post("/api/v1/reports", "kind=adapter&name=alice/sql&reason=spam&comment=a%00b",
                           content_type="application/x-www-form-urlencoded")
    assert_api_error(response, 400, "nul_character")


# --- an Authorization header of nothing but (non-ASCII) whitespace ------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("header", ["\xa0", "\x85", "  "])
@pytest.mark.parametrize("url", ["/api/v1/adapters", "/api/v1/stacks", "/api/v1/users/alice"])
def test_blank_authorization_header_is_401(client, world, header, url):
    assert_api_error(client.get(url, HTTP_AUTHORIZATION=header), 401, "authentication_failed")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["\xa0", "\x85"])
def test_blank_authorization_header_on_hf_routes_is_401(client, world, header):
    assert_hf_error(client.get("/api/models/alice/sql", HTTP_AUTHORIZATION=header), 401)


# --- a Range with more digits than int() converts -----------------------------------------------------------------

def downloads(world) -> list[str]:
    ready = world["stacks"]["ready"]
    return ["/api/v1/adapters/alice/sql/versions/1/files/adapter_model.safetensors",
            "/adapters/alice/sql/v/1/files/adapter_model.safetensors",
            "/alice/sql/resolve/main/adapter_model.safetensors",
            f"/api/v1/stacks/{ready}/files/model.safetensors",
            f"/stacks/{ready}/files/model.safetensors",
            f"/stacks/{ready}/resolve/main/model.safetensors"]


@pytest.mark.django_db
@pytest.mark.parametrize("which", range(6))
def test_huge_range_start_is_416(client, world, which):
    response = client.get(downloads(world)[which], HTTP_RANGE=f"bytes={HUGE}-")
    assert response.status_code == 416
    assert response["Content-Range"].startswith("bytes */")


@pytest.mark.django_db
@pytest.mark.parametrize("header", [f"bytes=0-{HUGE}", f"bytes=-{HUGE}", f"bytes=0000{'0' * 5000}1-"])
def test_huge_range_end_or_suffix_is_served(client, world, header):
    url = f"/api/v1/stacks/{world['stacks']['ready']}/files/model.safetensors"
    response = client.get(url, HTTP_RANGE=header)
    assert response.status_code == 206
    start = 1 if header.endswith("1-") else 0
    assert b"".join(response.streaming_content) == WEIGHTS[start:]


# --- JSON bodies nested too deep, or with NUL in a string ---------------------------------------------------------

POSTS = ["/api/v1/stacks", "/api/v1/uploads", "/api/v1/reports", "/api/v1/auth/tokens",
         "/api/v1/moderation/items/bulk", "/api/v1/adapters/mod/new/versions"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", POSTS)
@pytest.mark.parametrize("body", ["[" * 100_000, "[" * 500 + "]" * 500])
def test_deeply_nested_json_is_400(client, world, url, body):
    client.force_login(world["mod"])
    assert_api_error(client.post(url, body, content_type="application/json"), 400, "parse_error")


@pytest.mark.django_db
@pytest.mark.parametrize("body", ['{"base_model": "\\u0000", "adapters": ["alice/sql"]}',
                                  '{"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql\\u0000"]}',
                                  '{"base_model": "x", "adapters": [{"adapter": "alice/sql", "\\u0000": 1}]}'])
def test_nul_in_a_json_string_is_400(client, world, body):
    client.force_login(world["alice"])
    assert_api_error(client.post("/api/v1/stacks", body, content_type="application/json"), 400, "parse_error")


# --- numbers in digits int() refuses ------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("version", ["²", "١", "x", HUGE])
def test_eval_card_version_must_be_ascii_digits(client, world, version):
    assert_api_error(client.get("/api/v1/adapters/alice/sql/evals", {"version": version}), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("target_id", ["²", "١", HUGE])
@pytest.mark.parametrize("url", ["/api/v1/moderation/audit", "/api/v1/moderation/audit.csv"])
def test_audit_target_id_must_be_ascii_digits(client, world, url, target_id):
    client.force_login(world["mod"])
    assert_api_error(client.get(url, {"target_id": target_id}), 400, "invalid_filter")


@pytest.mark.django_db
@pytest.mark.parametrize("target_id", ["²", HUGE])
def test_audit_page_ignores_a_target_id_that_is_no_number(client, world, target_id):
    client.force_login(world["mod"])
    assert client.get("/moderation/audit", {"target_id": target_id}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("ids", [["²"], [HUGE]])
def test_bulk_ids_must_be_numbers(client, world, ids):
    client.force_login(world["mod"])
    assert_api_error(client.post("/api/v1/moderation/items/bulk", {"ids": ids, "decision": "approve"},
                                 content_type="application/json"), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("ids", [["²"], ["١"], [HUGE]])
def test_bulk_page_skips_ids_that_are_no_ascii_number(client, world, ids):
    client.force_login(world["mod"])
    response = client.post("/moderation/items/bulk", {"ids": ids, "decision": "approve"}, follow=True)
    assert response.status_code == 200
    assert b"0 decided." in response.content


# --- the hub's known errors raised inside a page ------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("stack", "path", "status"), [("queued", "model.safetensors", 409),
                                                       ("withdrawn", "model.safetensors", 404),
                                                       ("ready", "missing.bin", 404)])
def test_stack_file_page_refusals_are_error_pages(client, world, stack, path, status):
    recipe_hash = world["stacks"][stack]
    assert_page_error(client.get(f"/stacks/{recipe_hash}/files/{path}"), status)
    assert_api_error(client.get(f"/api/v1/stacks/{recipe_hash}/files/{path}"), status)


# --- bodies over DATA_UPLOAD_MAX_MEMORY_SIZE ----------------------------------------------------------------------

BIG_BODIES = {"multipart": {"name": "x" * 2000}, "application/x-www-form-urlencoded": "name=" + "x" * 2000,
              "application/json": '{"name": "%s"}' % ("x" * 2000), "application/yaml": "name: " + "x" * 2000}


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "content_type"), [
    *((url, content_type) for url in ("/api/v1/auth/tokens", "/api/v1/reports")
      for content_type in BIG_BODIES if content_type != "application/yaml"),
    ("/api/v1/stacks", "application/json"),  # recipes are JSON or YAML (a mergekit config)
    ("/api/v1/stacks", "application/yaml"),
    ("/api/v1/adapters/mod/new/versions", "multipart"),  # takes multipart and JSON only
    ("/api/v1/adapters/mod/new/versions", "application/json"),
])
def test_body_over_the_limit_is_413_json(client, world, settings, url, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(world["mod"])
    kwargs = {} if content_type == "multipart" else {"content_type": content_type}
    assert_api_error(client.post(url, BIG_BODIES[content_type], **kwargs), 413, "too_large")

"""What the OpenAPI schema says about authentication, errors and downloads, and the answers it describes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import TokenScope
from hub.accounts.services import api_token_create

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_the_schema_documents_the_api_and_only_it(schema):
    paths = set(schema["paths"])
    assert paths and all(path.startswith("/api/v1/") for path in paths)  # not the Hugging Face-compatible routes
    assert "/api/v1/leaderboards" in paths


def test_authentication_is_a_bearer_token_and_anonymous_reads_are_allowed(schema):
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth"}
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    security = {(path, method): op.get("security") for path, method, op in operations(schema)}
    assert security[("/api/v1/adapters", "get")] == [{"bearerAuth": []}, {}]
    assert security[("/api/v1/stacks", "post")] == [{"bearerAuth": []}]
    assert security[("/api/v1/auth/tokens", "get")] == [{"bearerAuth": []}]  # it answers 401 to anonymous callers
    assert security[("/api/v1/auth/tokens", "post")] == [{"bearerAuth": []}, {}]  # a password gets a token
    assert security[("/api/v1/moderation/queue", "get")] == [{"bearerAuth": []}]


def test_every_operation_documents_its_errors_in_the_error_shape(schema):
    error = schema["components"]["schemas"]["ErrorOut"]
    detail = component(schema, error["properties"]["error"]["$ref"])
    assert error["required"] == ["error"] and set(detail["required"]) == {"code", "message"}
    assert "details" in detail["properties"]
    for path, method, operation in operations(schema):
        for status in ("400", "401", "403", "404"):
            content = operation["responses"][status]["content"]
            assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}, (
                path, method, status)
    upload = schema["paths"]["/api/v1/uploads"]["post"]["responses"]
    assert {"413", "415", "429"} <= set(upload)


def test_downloads_are_documented_as_bytes(schema):
    downloads = [path for path in schema["paths"] if "/files/{path}" in path and "/federation/" not in path]
    assert len(downloads) == 4  # base models, adapters, datasets, stacks (a federated item's file redirects)
    for path in downloads:
        responses = schema["paths"][path]["get"]["responses"]
        for status in ("200", "206"):
            assert responses[status]["content"] == {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        assert {"302", "304", "416"} <= set(responses)


def test_the_leaderboard_index_is_an_object_with_results(schema):
    response = schema["paths"]["/api/v1/leaderboards"]["get"]["responses"]["200"]
    index = component(schema, response["content"]["application/json"]["schema"]["$ref"])
    assert index["properties"]["results"]["type"] == "array"
    assert APIClient().get("/api/v1/leaderboards").json() == {"results": []}


def test_a_dataset_without_a_base_model_is_documented_as_one(schema, make_user, make_version):
    assert component(schema, "RepositoryOut")["properties"]["base_model"]["nullable"] is True
    make_version(make_user("alice"), "prose", kind="dataset", files={"train.jsonl": b'{"text": "a"}\n'})
    assert APIClient().get("/api/v1/datasets/alice/prose").json()["base_model"] is None


def test_an_api_path_no_route_matches_answers_a_json_404():
    response = APIClient().get("/api/v1/uploads/not-a-uuid")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    page = APIClient().get("/no-such-page/at/all/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "\u0663", "1.5", ""])
def test_a_page_size_that_is_not_a_positive_number_is_refused(page_size):
    response = APIClient().get("/api/v1/users", {"page_size": page_size})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_a_page_size_past_the_cap_gets_a_full_page(make_user):
    for _ in range(3):
        make_user()
    response = APIClient().get("/api/v1/users", {"page_size": "9" * 5000})
    assert response.status_code == 200 and len(response.json()["results"]) == 3
    assert len(APIClient().get("/api/v1/users", {"page_size": "2"}).json()["results"]) == 2


def test_text_fields_take_json_strings_only(make_user):
    client = APIClient()
    alice = make_user("alice")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=alice, name='t', scope=TokenScope.WRITE).raw}")
    response = client.post("/api/v1/uploads", {"filename": 0, "size": 10}, format="json")
    assert response.status_code == 400 and "filename" in response.json()["error"]["details"]
    assert client.post("/api/v1/uploads", {"filename": "0", "size": 10}, format="json").status_code == 201

"""The list endpoints' filters are declared once (django-filter FilterSets): the schema lists them by itself, and a
bad value is refused in the error shape, naming the parameter."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hub.catalog.models import VersionState

pytestmark = pytest.mark.django_db


def query_parameters(schema: dict, path: str) -> dict[str, dict]:
    return {p["name"]: p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}


@pytest.mark.parametrize("path", ["/api/v1/adapters", "/api/v1/datasets"])
def test_repository_lists_document_every_filter(schema, path):
    params = query_parameters(schema, path)
    assert {"base_model", "tag", "task", "owner", "license", "state", "search", "ordering", "cursor",
            "page_size"} <= set(params)
    assert set(params["state"]["schema"]["enum"]) == set(VersionState.values)
    assert params["owner"]["description"] == "owner username"


def test_the_stack_list_documents_its_filters(schema):
    assert {"base_model", "adapter"} <= set(query_parameters(schema, "/api/v1/stacks"))


def test_a_bad_filter_value_names_the_parameter():
    refused = APIClient().get("/api/v1/adapters", {"state": "bogus"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_filter" and error["details"] == {"field": "state"}
    assert error["message"].startswith("state: must be one of ") and "published" in error["message"]
    assert APIClient().get("/api/v1/adapters", {"state": ""}).status_code == 200  # empty, like absent: any state

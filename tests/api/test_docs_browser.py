"""The API docs render in a browser from the hub alone: Swagger UI comes with it (drf-spectacular-sidecar), not a CDN."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_the_schema_offline(live_server, page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server.url + "/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() > 20  # the schema's operations, not an empty shell
    assert requested and all(url.startswith(live_server.url) for url in requested), requested

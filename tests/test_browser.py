"""Headless Chromium against a live server: search, then open an adapter page."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_then_open_an_adapter(live_server, page, make_user, make_version, tiny_base_model):
    alice = make_user("alice")
    make_version(alice, "sql-helper", body="Turns questions into **SQL** queries.", base_model=tiny_base_model,
                 summary="text to SQL")
    make_version(alice, "poet", base_model=tiny_base_model,
                 files={"README.md": b"---\nlicense: mit\n---\nWrites poems.\n", "adapter_model.safetensors": b"w"})
    page.goto(live_server.url)
    page.get_by_role("searchbox", name="Search adapters").fill("SQL")
    page.keyboard.press("Enter")
    page.wait_for_url("**/adapters/?search=SQL")
    results = page.locator(".repo-name")
    assert results.all_inner_texts() == ["alice/sql-helper"]
    results.first.click()
    page.wait_for_url("**/adapters/alice/sql-helper")
    assert "alice/sql-helper" in page.locator("h1.repo-title").inner_text()
    assert page.locator("article.card-body strong").inner_text() == "SQL"
    assert page.get_by_role("link", name="adapter_model.safetensors").is_visible()

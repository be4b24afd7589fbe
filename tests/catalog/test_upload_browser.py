"""Headless Chromium: upload an adapter through the page, watch validation pass live."""

from __future__ import annotations

import pytest

from hub.catalog.models import Version, VersionState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username: str, password: str = "correct-horse-battery") -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_upload_page_shows_progress_then_live_validation(live_server, page, celery_worker, make_user,
                                                         tiny_base_model, make_adapter):
    make_user("alice")
    adapter = make_adapter(rank=4, alpha=8)
    log_in(page, live_server, "alice")
    page.get_by_role("link", name="Upload").click()
    page.get_by_label("Name").fill("browser-upload")
    page.get_by_label("Base model").select_option("nomoat/tiny-llama")
    page.get_by_label("Files (or one archive)").set_input_files(sorted(str(p) for p in adapter.iterdir()))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/adapters/alice/browser-upload/v/1/status")
    page.locator("#state", has_text="Pending review").wait_for(timeout=120_000)
    assert page.locator("#progress-bar").count() == 0  # we left the upload page once the upload finished
    passed = page.locator(".checks .check-passed").all_inner_texts()
    assert passed and not page.locator(".checks .check-failed").count()
    assert any("adapter_model.safetensors" in row for row in passed)
    assert Version.objects.get(repository__name="browser-upload").state == VersionState.PENDING_REVIEW


def test_a_rejected_upload_lists_its_reasons(live_server, page, celery_worker, make_user, tiny_base_model, tmp_path):
    make_user("bob")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04 pickle")
    (tmp_path / "adapter_config.json").write_text("{not json")
    log_in(page, live_server, "bob")
    page.goto(f"{live_server.url}/upload/adapter")
    page.get_by_label("Name").fill("broken")
    page.get_by_label("Files (or one archive)").set_input_files([str(tmp_path / "adapter_model.bin"),
                                                                 str(tmp_path / "adapter_config.json")])
    page.get_by_role("button", name="Upload").click()
    page.locator("#state", has_text="Rejected").wait_for(timeout=120_000)
    failed = " ".join(page.locator(".checks .check-failed").all_inner_texts())
    assert "adapter_model.bin" in failed and "safetensors" in failed
    assert "adapter_config.json" in failed

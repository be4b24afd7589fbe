"""Headless Chromium, the issue's whole story: upload, review, publish, report, unpublish, audit.

The upload goes through the real upload page and a real Celery worker validates it.
"""

from __future__ import annotations

import pytest

from hub.accounts.models import Role
from tests.catalog.test_upload_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REASON = "the weights carry a pickle payload"


def test_upload_review_publish_report_unpublish_audit(live_server, browser, page, celery_worker, make_user,
                                                     tiny_base_model, make_adapter):
    make_user("alice")
    make_user("bob")
    make_user("mod", role=Role.MODERATOR)
    contexts = [browser.new_context() for _ in range(3)]
    moderator, reporter, anonymous = (c.new_page() for c in contexts)
    try:
        # alice uploads an adapter; the worker validates it and it waits for review.
        log_in(page, live_server, "alice")
        page.get_by_role("link", name="Upload").click()
        page.get_by_label("Name").fill("sql-helper")
        page.get_by_label("Base model").select_option("nomoat/tiny-llama")
        page.get_by_label("Files (or one archive)").set_input_files(
            sorted(str(p) for p in make_adapter(rank=4, alpha=8).iterdir()))
        page.get_by_role("button", name="Upload").click()
        page.locator("#state", has_text="Pending review").wait_for(timeout=120_000)
        adapter_page = f"{live_server.url}/adapters/alice/sql-helper"
        file_url = f"{live_server.url}/api/v1/adapters/alice/sql-helper/versions/1/files/adapter_model.safetensors"
        assert anonymous.goto(adapter_page).status == 404

        # The moderator opens the queue, reads the validation report, claims the item and approves it.
        log_in(moderator, live_server, "mod")
        moderator.get_by_role("link", name="Moderation").click()
        moderator.get_by_role("link", name="alice/sql-helper v1").click()
        report_rows = moderator.locator("#validation-report tr").all_inner_texts()
        assert any("passed" in row for row in report_rows) and not any("failed" in row for row in report_rows)
        moderator.get_by_role("button", name="Claim").click()
        moderator.get_by_text("You hold this item").wait_for()
        moderator.get_by_role("button", name="Approve and publish").click()
        moderator.get_by_text("alice/sql-helper@1: approved.").wait_for()

        # Published: anonymous visitors see it and can download its files.
        assert anonymous.goto(adapter_page).status == 200
        assert anonymous.locator("h1.repo-title").inner_text().startswith("alice/sql-helper")
        assert anonymous.request.get(file_url).status == 200
        page.goto(f"{live_server.url}/notifications/")
        assert "alice/sql-helper v1: approved" in page.locator(".notification").first.inner_text()

        # bob reports it from the adapter page.
        log_in(reporter, live_server, "bob")
        reporter.goto(adapter_page)
        reporter.get_by_role("link", name="Report").click()
        reporter.get_by_label("What is wrong").select_option("malware")
        reporter.get_by_label("Details for the moderators").fill("The weights file unpickles code.")
        reporter.get_by_role("button", name="Send report").click()
        reporter.get_by_text("your report on alice/sql-helper v1 was sent").wait_for()

        # The moderator unpublishes it from the reports page.
        moderator.get_by_role("link", name="Reports").click()
        reported = moderator.locator(".reported", has_text="alice/sql-helper v1")
        assert "The weights file unpickles code." in reported.inner_text()
        reported.get_by_label("Decision").select_option("unpublish")
        reported.get_by_label("Reason").fill(REASON)
        reported.get_by_role("button", name="Resolve").click()
        moderator.get_by_text("Reports resolved.").wait_for()

        # The files now answer 404, with the reason.
        assert anonymous.goto(file_url).status == 404
        assert f"unpublished by a moderator: {REASON}" in anonymous.locator("body").inner_text()
        assert anonymous.goto(f"{adapter_page}/v/1/files/adapter_model.safetensors").status == 404
        assert anonymous.goto(adapter_page).status == 404

        # The audit log shows both actions, with who and why.
        moderator.get_by_role("link", name="Audit log").click()
        rows = moderator.locator("table.audit tr", has_text="alice/sql-helper v1").all_inner_texts()
        assert any("review.approve" in r and "mod" in r for r in rows)
        assert any("takedown.unpublish" in r and REASON in r for r in rows)
    finally:
        for context in contexts:
            context.close()

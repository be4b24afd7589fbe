"""Headless Chromium at phone width: from a dataset page, train an adapter on the form, watch the job's page follow
it live (its polling script runs under the hub's Content-Security-Policy) to the published version."""

from __future__ import annotations

import re

import pytest

from hub.accounts.models import Role
from hub.training.models import JobState, TrainingJob
from tests.catalog.test_upload_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_train_from_the_dataset_page_and_follow_the_job_live(live_server, page, celery_worker, make_user,
                                                             tiny_base_model, publish_dataset) -> None:
    alice = make_user("alice", role=Role.TRUSTED)
    publish_dataset(alice, "units")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/alice/units")
    page.get_by_role("link", name="Train an adapter").click()
    page.wait_for_url(re.compile(r"/trainings/new\?dataset="))
    assert "Estimated training time" in page.locator("#estimate").inner_text()
    page.get_by_label("Into your adapter").fill("units-lora")
    for label, value in (("Rank", "4"), ("Alpha", "8"), ("Steps", "12"), ("Learning rate", "0.005"),
                         ("Batch size", "4"), ("Max sequence length", "32")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(re.compile(r"/trainings/\d+$"))
    # No reload: the page's script polls live.json and swaps in the finished state and the loss curve.
    page.locator("#state", has_text="Finished").wait_for(timeout=180_000)
    assert page.locator("#loss-chart svg").count() == 1
    assert "alice/units-lora v1" in page.locator("#produced").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    job = TrainingJob.objects.get()
    assert job.state == JobState.FINISHED and job.spec["lora"]["rank"] == 4 and job.total_steps == 12

"""Headless Chromium: build a stack on the builder page, follow its progress, download it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from hub.stacks.models import BuildState, StackBuild
from tests.catalog.test_upload_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_builder_page_builds_a_stack_with_live_progress(live_server, page, celery_worker, make_user,
                                                             publish_adapter):
    alice, bob = make_user("alice"), make_user("bob")
    publish_adapter(alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=21)
    publish_adapter(bob, "poet", rank=4, alpha=8, target_modules=("up_proj",), seed=22)
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/adapters/alice/sql")
    page.get_by_role("link", name="Stack with…").click()  # the adapter page's way in
    page.locator("#chosen tbody tr").first.wait_for()
    assert page.locator("#chosen tbody tr").all_inner_texts()[0].startswith("alice/sql@1")
    page.get_by_label("Search adapters to add").fill("poet")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Add bob/poet").click()
    page.get_by_label("weight of bob/poet").fill("0.5")
    page.get_by_label("Method").select_option("ties")
    assert page.get_by_label("Density").is_visible()
    page.get_by_label("Output").select_option("merged")
    page.get_by_label("dtype").select_option("fp16")
    assert "Add at least one adapter." not in page.locator("#warnings").inner_text()
    page.get_by_role("button", name="Build").click()
    page.wait_for_url("**/stacks/*")
    page.locator("#state", has_text="ready").wait_for(timeout=180_000)
    assert page.locator("#percent").inner_text() == "100%"
    links = page.locator("a.download")
    assert any(name.endswith(".safetensors") for name in links.all_inner_texts())
    with page.expect_download() as download:
        page.get_by_role("link", name="config.json", exact=True).click()
    assert b"LlamaForCausalLM" in Path(download.value.path()).read_bytes()
    build = StackBuild.objects.get()
    assert build.state == BuildState.READY and build.method == "ties" and build.recipe["output"]["dtype"] == "fp16"
    assert [m.weight for m in build.members.order_by("position")] == [1.0, 0.5]


def test_the_builder_warns_before_building(live_server, page, make_user, tiny_base_model):
    make_user("alice")
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/stacks/new")
    assert "Add at least one adapter." in page.locator("#warnings").inner_text()
    page.get_by_role("button", name="Build").click()
    expect(page.locator("#build-error")).to_contain_text("non-empty list of adapters")
    assert not StackBuild.objects.exists()

"""The leaderboard in headless Chromium with real runs: two adapters published for the tiny base model, evaluated
by the session's worker on the evals queue (the engine on the real files), then read as a person reads them."""

from __future__ import annotations

import pytest

from hub.evals.models import RunState
from tests.evals.conftest import wait_for_runs
from tests.test_pages_browser import PageWatch, check_page
from workers.engine.tiny import DEFAULT_TARGETS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BOARD = "/leaderboards/nomoat/tiny-llama"


def test_the_leaderboard_reads_well_and_filters(celery_worker, live_server, browser, make_user, eval_base, publish):
    alice, bob = make_user("alice"), make_user("bob")
    publish(alice, "gentle", eval_base, init_std=0.01, target_modules=DEFAULT_TARGETS)
    publish(bob, "harmful", eval_base, init_std=1.0, target_modules=DEFAULT_TARGETS, seed=7)
    wait_for_runs()
    publish(alice, "gentle", eval_base, init_std=0.02, target_modules=DEFAULT_TARGETS, seed=3)  # a second version
    runs = wait_for_runs()
    assert [r.state for r in runs] == [RunState.FINISHED] * 4, [(str(r), r.failure_reason) for r in runs]

    context = browser.new_context()
    page = context.new_page()
    watch = PageWatch(page, live_server.url)
    check_page(page, watch, live_server.url + BOARD, "leaderboard-real-runs")  # 390 and 1280 px: fits, no repr
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live_server.url + BOARD)

    # The table: the base and each adapter's latest version, ranked by bits per byte (lower is better).
    names = page.locator("#leaderboard tbody tr td:nth-child(2) a").all_inner_texts()
    assert sorted(names) == ["alice/gentle v2", "bob/harmful v1", "nomoat/tiny-llama"]
    assert names[-1] == "bob/harmful v1"  # the harmful adapter loses most general ability
    main = page.locator("main").inner_text()
    assert "bits per byte" in main and "bits_per_byte" not in main and "word_perplexity" not in main
    # The chart: one dot per row, titled in words.
    chart = page.locator("svg.chart").first
    assert chart.is_visible() and chart.locator("circle").count() >= 3
    assert "bits per byte" in chart.locator("title").first.text_content()
    # At 390 px it keeps a readable size (labels at 9 px or more, not 5) and scrolls inside its own box.
    assert chart.bounding_box()["width"] >= 540
    assert page.locator(".chart-scroll").first.bounding_box()["width"] <= 390

    # Filters: kind, name, metric; the page stays a phone's width.
    page.select_option("select[name=kind]", "adapter")
    page.get_by_role("button", name="Filter").click()
    assert sorted(page.locator("#leaderboard tbody tr td:nth-child(2) a").all_inner_texts()) == [
        "alice/gentle v2", "bob/harmful v1"]
    page.fill("input[name=q]", "gentle")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#leaderboard tbody tr td:nth-child(2) a").all_inner_texts() == ["alice/gentle v2"]
    page.select_option("select[name=metric]", "word_perplexity")
    page.get_by_role("button", name="Filter").click()
    assert "word perplexity" in page.locator("#leaderboard thead").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

    # A trend needs two points: alice's two versions have one, bob's single version shows its row and no chart.
    page.goto(live_server.url + "/adapters/alice/gentle")
    assert page.locator("#eval-card svg.chart").count() == 1
    assert "by version" in page.locator("#eval-card svg.chart title").first.text_content()
    page.goto(live_server.url + "/adapters/bob/harmful")
    assert page.locator("#eval-card table.eval-results tbody tr").count() >= 1
    assert page.locator("#eval-card svg.chart").count() == 0
    assert watch.foreign == [] and watch.errors == []
    context.close()

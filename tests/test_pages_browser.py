"""Every page in headless Chromium at a phone's width (390 px) and a laptop's (1280 px).

Each page: no sideways scrolling of the document, no Python repr in its text, no request to another host, no
console error; a screenshot of each goes to var/screenshots/ (under NOMOAT_DATA_DIR) for people to look at. Then
one focused test per defect of issue 13. The data is real: a tiny PEFT adapter and a dataset checked by the real
engine, a pickle renamed .safetensors rejected by it.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from hub.accounts.models import Role, User
from hub.audit.services import audit_record
from hub.catalog.models import Repository, Version, VersionState
from hub.catalog.previews import file_text
from hub.catalog.services import blob_put_stream
from hub.evals.models import EvalRun
from hub.evals.services import eval_run_claim, evals_schedule_version
from hub.evals.signals import eval_run_queued
from hub.evals.tasks import enqueue_run, run_eval
from hub.stacks.models import BuildState, StackAdapter, StackBuild, StackFile
from tests.catalog.test_upload_browser import log_in
from workers.engine.validation import validate_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"phone": 390, "laptop": 1280}
# A Python repr in page text: a dict or list literal, an object's default repr, True/False/None as a cell's whole text.
REPR = re.compile(r"\{'|\['|<[\w.]+ object at 0x")
BARE_CONSTANT = re.compile(r"^(True|False|None)$")
SCREENSHOTS = Path(settings.DATA_DIR) / "screenshots"
CARD = ("---\nlicense: apache-2.0\nbase_model: nomoat/tiny-llama\ntags: [sql, demo]\ntask: text-to-sql\n---\n\n"
        "# SQL helper\n\nTurns questions into **SQL**.\n\n```python\nprint('hello')\n```\n")
DATASET_CARD = "---\nlicense: cc-by-4.0\ntags: [sql]\ntask: text-to-sql\n---\n\n# SQL pairs\n\nQuestions and queries.\n"


def _rows(count: int, offset: int = 0) -> bytes:
    return b"".join(json.dumps({"prompt": f"question {i}?", "response": f"SELECT {i};"}).encode() + b"\n"
                    for i in range(offset, offset + count))


@pytest.fixture
def catalog(make_user, make_version, tiny_base_model, make_adapter, tmp_path):
    """alice's checked adapter (two versions) and dataset, bob's rejected pickle, a ready stack of both adapters."""
    alice, bob = make_user("alice"), make_user("bob")
    moderator = make_user("mod", role=Role.MODERATOR)
    bases = {tiny_base_model.name: tiny_base_model.module_shapes}

    def checked(owner, name, folder: Path, *, kind: str = "adapter", state: str = VersionState.PUBLISHED, **extra):
        report = validate_upload(folder, kind, bases, chosen_base=tiny_base_model.name if kind == "adapter" else None)
        version = make_version(owner, name, kind=kind, state=state, base_model=tiny_base_model if kind == "adapter"
                               else None, files={p.name: p.read_bytes() for p in sorted(folder.iterdir())}, **extra)
        Version.objects.filter(pk=version.pk).update(stats=report.stats, validation_report=report.to_dict(),
                                                     state_reason="" if report.ok else "the upload failed checks")
        return Version.objects.get(pk=version.pk), report

    def adapter_folder(name: str, **kwargs) -> Path:
        folder = tmp_path / name
        shutil.copytree(make_adapter(**kwargs), folder)
        (folder / "README.md").write_text(CARD)
        return folder

    sql1, _ = checked(alice, "sql-helper", adapter_folder("sql1", rank=4, alpha=8), summary="text to SQL")
    sql2, report = checked(alice, "sql-helper", adapter_folder("sql2", rank=4, alpha=8, seed=3), summary="text to SQL")
    assert report.ok, report.failures
    Repository.objects.filter(pk=sql2.repository_id).update(downloads=3, score=0.8745)
    poet, _ = checked(bob, "poet", adapter_folder("poet", rank=4, alpha=8, seed=5))

    broken = adapter_folder("broken", rank=4, alpha=8)
    (broken / "adapter_model.safetensors").write_bytes(pickle.dumps({"lora_A": [0.0] * 64}, protocol=4))
    rejected, report = checked(bob, "broken", broken, state=VersionState.REJECTED)
    assert not report.ok

    data = tmp_path / "dataset"
    data.mkdir()
    (data / "README.md").write_text(DATASET_CARD)
    (data / "train.jsonl").write_bytes(_rows(45))
    (data / "eval.jsonl").write_bytes(_rows(5, offset=1000))
    dataset, report = checked(alice, "sql-pairs", data, kind="dataset")
    assert report.ok, report.failures

    blob = blob_put_stream(stream=io.BytesIO(b"\0" * 123_456))
    build = StackBuild.objects.create(
        recipe_hash="ab" * 32, recipe={}, base_model=tiny_base_model, method="ties", output="merged",
        state=BuildState.READY, progress=1.0, progress_message="ready", requested_by=alice,
        request={"base_model": tiny_base_model.name, "method": {"name": "ties", "params": {"density": 0.5}},
                 "output": {"type": "merged", "dtype": "fp16"},
                 "adapters": [{"adapter": "alice/sql-helper", "version": 2, "weight": 0.7},
                              {"adapter": "bob/poet", "version": 1, "weight": 0.5}]})
    StackAdapter.objects.create(build=build, version=sql2, position=0, weight=0.7)
    StackAdapter.objects.create(build=build, version=poet, position=1, weight=0.5)
    StackFile.objects.create(build=build, path="model.safetensors", blob=blob)
    audit_record(actor=moderator, action="version.publish", target_kind="version", target_id=sql2.pk,
                 target_label=str(sql2), before={"state": "pending_review", "flags": ["new_uploader"]},
                 after={"state": "published", "sampled": False, "note": None}, reason="looks right")
    return {"sql": sql2, "poet": poet, "rejected": rejected, "dataset": dataset, "build": build}


class PageWatch:
    """Collects what a page does that it must not: requests to other hosts, console errors, uncaught exceptions."""

    def __init__(self, page, origin: str) -> None:
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: None if r.url.startswith((origin, "data:", "blob:")) else self.foreign.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def check_page(page, watch: PageWatch, url: str, shot: str, *, status: int = 200) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        response = page.goto(url)
        assert response.status == status, (url, response.status)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} at {width} px is {overflow} px too wide"
        text = page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body")
        assert not REPR.search(text), (url, REPR.search(text).group(0), text[:2000])
        cells = page.locator("main td, main dd").all_inner_texts() if page.locator("main").count() else []
        assert not [c for c in cells if BARE_CONSTANT.match(c.strip())], (url, cells)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{shot}-{label}.png"), full_page=True)
    expected_errors = [] if status == 200 else [e for e in watch.errors if "status of 404" in e]
    assert watch.foreign == [], watch.foreign
    assert [e for e in watch.errors if e not in expected_errors] == [], watch.errors
    watch.errors.clear()


def test_every_page_fits_a_phone_and_a_laptop(live_server, browser, catalog):
    origin = live_server.url
    build = catalog["build"]
    public = {
        "home": "/", "adapters": "/adapters/", "adapters-tag": "/adapters/?tag=sql&ordering=downloads",
        "adapters-nomatch": "/adapters/?search=zzzz&license=apache-2.0", "datasets": "/datasets/",
        "adapter": "/adapters/alice/sql-helper", "adapter-v1": "/adapters/alice/sql-helper/v/1",
        "file-readme": "/adapters/alice/sql-helper/v/2/files/README.md",
        "file-config": "/adapters/alice/sql-helper/v/2/files/adapter_config.json",
        "adapter-diff": "/adapters/alice/sql-helper/diff/1..2",
        "dataset": "/datasets/alice/sql-pairs", "dataset-eval": "/datasets/alice/sql-pairs?split=eval.jsonl",
        "base-model": "/models/nomoat/tiny-llama", "user": "/users/alice", "stacks": "/stacks/",
        "builder": "/stacks/new", "stack": f"/stacks/{build.recipe_hash}", "stack-evals": f"/stacks/{build.recipe_hash}/evals",
        "leaderboards": "/leaderboards/", "leaderboard": "/leaderboards/nomoat/tiny-llama", "login": "/login/",
        "signup": "/signup/", "api-docs": "/api/v1/docs/",
    }
    context = browser.new_context()
    page = context.new_page()
    watch = PageWatch(page, origin)
    for shot, path in public.items():
        check_page(page, watch, origin + path, shot)
    check_page(page, watch, origin + "/no/such/page", "not-found", status=404)
    context.close()

    for username, pages in {
        "bob": {"status-rejected": "/adapters/bob/broken/v/1/status", "upload": "/upload/adapter",
                "adapter-own-rejected": "/adapters/bob/broken/v/1", "settings": "/profile/"},
        "mod": {"moderation-queue": "/moderation/", "moderation-audit": "/moderation/audit",
                "moderation-reports": "/moderation/reports"},
    }.items():
        context = browser.new_context()
        page = context.new_page()
        log_in(page, live_server, username)
        watch = PageWatch(page, origin)
        for shot, path in pages.items():
            check_page(page, watch, origin + path, shot)
        context.close()


def test_the_audit_log_shows_before_and_after_as_fields(live_server, page, catalog):
    log_in(page, live_server, "mod")
    page.goto(live_server.url + "/moderation/audit")
    row = page.locator("table.audit tr", has_text="version.publish").inner_text()
    assert "State\tpending_review" in row and "Flags\tnew_uploader" in row and "Sampled\tno" in row
    assert "{'" not in row and "False" not in row


def test_the_header_folds_into_a_menu_on_a_phone(live_server, page, catalog):
    page.set_viewport_size({"width": 390, "height": 800})
    log_in(page, live_server, "mod")
    assert not page.get_by_role("link", name="Upload").is_visible()
    page.get_by_role("button", name="Menu").click()
    for name in ("Adapters", "Upload", "Moderation"):
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    assert page.get_by_role("button", name="Log out").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")  # focus starts at the top of the page: the skip link comes first
    page.goto(live_server.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_the_adapter_page_reads_like_a_model_page(live_server, page, catalog):
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    assert page.locator("article.card-body .highlight span.nb").inner_text() == "print"  # the card's code, highlighted
    about = page.locator("#metadata").inner_text()
    for expected in ("nomoat/tiny-llama", "Rank", "4", "Alpha", "8", "apache-2.0", "text-to-sql", "0.8745"):
        assert expected in about
    stats = page.locator("#stats").inner_text()
    assert "Largest update norms" in stats and "File bytes\t8.19 KB" in stats and "Use rslora\tno" in stats
    modules = page.locator("#stats table table th code").all_inner_texts()  # module names as code, not as words
    assert 1 <= len(modules) <= 5 and all(name.startswith("model.layers.") for name in modules)
    assert "e-0" not in page.locator("main").inner_text()  # no float exponents anywhere
    assert "3 downloads" in page.locator("h1.repo-title + p").inner_text()
    # "Use this adapter": tabs, each with its snippet and a copy button.
    peft = page.locator("#snippet-peft").inner_text()
    assert f'HF_ENDPOINT"] = "{live_server.url}"' in peft and 'PeftModel.from_pretrained(base, "alice/sql-helper", revision="v2")' in peft
    page.get_by_role("tab", name="nomoat pull").click()
    assert "nomoat pull alice/sql-helper@2" in page.locator("#snippet-cli").inner_text()
    assert page.locator("#use-cli").is_visible() and not page.locator("#use-peft").is_visible()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("#use-cli button.copy").click()
    expect(page.locator("#use-cli button.copy")).to_have_text("Copied")
    assert "nomoat pull alice/sql-helper@2" in page.evaluate("navigator.clipboard.readText()")
    page.get_by_role("tab", name="Stack it").click()
    assert page.get_by_role("link", name="Open the stack builder").get_attribute("href").startswith("/stacks/new?")
    # Versions with what changed, and the lineage as links.
    assert "changed adapter_model.safetensors" in page.locator("#versions").inner_text()
    assert page.locator("#lineage a", has_text="nomoat/tiny-llama").count() == 1


def test_a_files_links_wrap_between_words_on_a_phone(live_server, page, catalog):
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    links = page.locator("#files td.nowrap a")
    assert links.count() >= 6  # torrent, meta4 and magnet of each published file
    # A link broken inside its word ("torren" above "t", the aside's cells break anywhere) has a box per line.
    assert links.evaluate_all("links => links.map(a => a.getClientRects().length)") == [1] * links.count()


def test_text_files_show_in_the_page_highlighted(live_server, page, catalog):
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    page.get_by_role("link", name="adapter_config.json", exact=True).click()
    page.wait_for_url("**/files/adapter_config.json")
    assert page.locator("h1").inner_text() == "adapter_config.json"
    code = page.locator("#file-view .highlight")
    assert '"peft_type"' in code.inner_text() and code.locator("span").count() > 5  # highlighted tokens
    page.goto(live_server.url + "/adapters/alice/sql-helper/v/2/files/README.md")
    assert page.locator("#view-rendered strong").inner_text() == "SQL"
    page.get_by_role("tab", name="Source").click()
    assert "license: apache-2.0" in page.locator("#view-source").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_text() == CARD


def test_the_dataset_page_shows_its_rows_per_split(live_server, page, catalog):
    page.goto(live_server.url + "/datasets/alice/sql-pairs")
    assert 'load_dataset("alice/sql-pairs", revision="v1")' in page.locator("#snippet-datasets").inner_text()
    rows = page.locator("#rows")
    assert "Rows 1–20 of 45" in rows.inner_text()
    headers = rows.locator("thead th").all_inner_texts()
    assert headers[1:] == ["prompt string", "response string"]
    assert rows.locator("tbody tr").first.inner_text().split("\t")[1:] == ["question 0?", "SELECT 0;"]
    page.get_by_role("link", name="next rows →").click()
    assert "Rows 21–40 of 45" in page.locator("#rows").inner_text()
    page.get_by_role("link", name="eval eval.jsonl").click()
    assert "question 1000?" in page.locator("#rows tbody").inner_text()
    assert "Rows 1–5 of 5" in page.locator("#rows").inner_text()


def test_a_pickle_upload_says_what_it_is_and_how_to_fix_it(live_server, page, catalog):
    log_in(page, live_server, "bob")
    page.goto(live_server.url + "/adapters/bob/broken/v/1/status")
    checks = page.locator("#checks > li")
    first = checks.first
    assert "check-failed" in first.get_attribute("class")  # failures first
    text = first.inner_text()
    assert "No pickle files" in text and "adapter_model.safetensors" in text and "safe_serialization=True" in text
    all_text = page.locator("#status").inner_text()
    assert "1 check fails" in page.locator("#reason").inner_text()  # said once, not the failures again
    assert "header length" not in all_text  # the unreadable header folds into the pickle failure
    failed = page.locator("#checks > li.check-failed").count()
    passed = page.locator("#checks > li.check-passed").count()
    assert failed >= 1 and passed >= 1
    assert "8 checks did not run" in page.locator("details.checks-skipped summary").inner_text()  # folded away
    assert "8589934592" not in all_text and "8.59 GB" in all_text
    classes = [c.get_attribute("class") for c in checks.all()]
    assert classes == sorted(classes, key=["check-failed", "check-passed"].index)
    assert page.locator(".checks li.check-failed").first.evaluate("e => getComputedStyle(e).borderLeftColor") \
        != page.locator(".checks li.check-passed").first.evaluate("e => getComputedStyle(e).borderLeftColor")
    page.get_by_role("link", name="Upload a fixed version").click()
    page.wait_for_url(re.compile(r"/upload/adapter\?name=broken&base_model="))
    assert page.get_by_label("Name").input_value() == "broken"
    assert page.get_by_label("Base model").input_value() == "nomoat/tiny-llama"


def test_the_status_page_follows_the_queue_live(live_server, page, catalog, make_version):
    # The test moves the versions through the queue itself (make_version enqueues no validation).
    waiting = make_version(User.objects.get(username="alice"), "queued", state=VersionState.UPLOADED)
    later = make_version(User.objects.get(username="alice"), "later", state=VersionState.UPLOADED)
    log_in(page, live_server, "alice")
    page.goto(live_server.url + "/adapters/alice/later/v/1/status")
    page.locator("#spinner", has_text="1 upload ahead of this one").wait_for(timeout=15_000)
    Version.objects.filter(pk=waiting.pk).update(state=VersionState.PENDING_REVIEW)
    page.locator("#spinner", has_text="next in line").wait_for(timeout=15_000)
    Version.objects.filter(pk=later.pk).update(state=VersionState.PENDING_REVIEW)
    page.locator("#state", has_text="Pending review").wait_for(timeout=15_000)
    assert "A moderator reviews it next" in page.locator("#status").inner_text()
    assert page.locator("#status-region").get_attribute("data-settled") == "true"


def test_the_status_page_follows_evaluations_live(live_server, page, catalog, settings):
    settings.EVAL_MAX_DOCS, settings.EVAL_MAX_ITEMS = 3, 40  # a small general suite: the run takes seconds
    # The test plays the evals worker (the real task, in this process): no worker may take the runs first.
    eval_run_queued.disconnect(dispatch_uid="evals.enqueue_run")
    try:
        runs = evals_schedule_version(version=catalog["sql"])
    finally:
        eval_run_queued.connect(enqueue_run, dispatch_uid="evals.enqueue_run")
    run = next(r for r in runs if r.version_id == catalog["sql"].pk)
    log_in(page, live_server, "alice")
    page.goto(live_server.url + "/adapters/alice/sql-helper/v/2/status")
    progress = page.locator("#eval-progress")
    progress.get_by_text("1 run ahead of it").wait_for(timeout=15_000)  # the base model's run was queued first
    eval_run_claim(run_id=run.pk, lease_seconds=600)
    progress.locator(".eval-running").wait_for(timeout=15_000)
    EvalRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now())  # that worker died; this one finishes
    assert run_eval(run.pk) == "finished"
    page.locator("#eval-card-link").wait_for(timeout=15_000)
    assert re.search(r"bits per byte [\d.]+ · per item", progress.locator(".eval-finished").inner_text())
    assert page.locator("#eval-region").get_attribute("data-settled") == "true"
    page.locator("#eval-card-link").click()
    assert page.url.endswith("/adapters/alice/sql-helper/v/2#eval-card")
    assert "bits per byte" in page.locator("#eval-card").inner_text()


def test_a_version_diff_wraps_long_lines_on_a_phone(live_server, page, catalog, make_version):
    sql = catalog["sql"]
    config = json.loads(file_text(sql.files.select_related("blob").get(path="adapter_config.json")))
    config["r"] = 16
    long_word = "SELECT" + "x" * 300  # no place to break: the cell must wrap it anyway
    make_version(sql.repository.owner, "sql-helper", base_model=sql.base_model, files={
        "README.md": (CARD + f"\nNow with {long_word}.\n").encode(), "adapter_config.json": json.dumps(config).encode()})
    check_page(page, PageWatch(page, live_server.url), live_server.url + "/adapters/alice/sql-helper/diff/2..3",
               "adapter-diff-lines")  # 390 and 1280 px: no sideways scrolling, no repr
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    page.get_by_role("link", name="compare with v2").click()
    assert page.url.endswith("/adapters/alice/sql-helper/diff/2..3")
    added = page.locator("#diff-card tr.diff-added", has_text=long_word)
    assert added.is_visible() and added.bounding_box()["width"] <= 390
    assert page.locator("#diff-files tr.file-removed", has_text="adapter_model.safetensors").count() == 1
    assert page.locator(".diff-file", has_text="adapter_config.json").locator("tr.diff-added",
                                                                            has_text='"r": 16').count() == 1


def test_browse_has_facets_with_counts_and_different_sorts(live_server, page, catalog):
    page.goto(live_server.url + "/adapters/")
    facets = page.locator("aside.facet")
    assert "nomoat/tiny-llama" in facets.inner_text() and "sql" in facets.inner_text()
    license_link = facets.get_by_role("link", name=re.compile(r"^apache-2\.0\s+2$"))
    license_link.click()
    assert "2 adapters" in page.locator("#result-count").inner_text()
    cards = page.locator(".repo-card")
    assert "apache-2.0" in cards.first.inner_text() and "sql" in cards.first.locator(".tags").inner_text()
    page.goto(live_server.url + "/adapters/?ordering=downloads")
    popular = page.locator(".repo-name").all_inner_texts()
    page.goto(live_server.url + "/adapters/?ordering=newest")
    newest = page.locator(".repo-name").all_inner_texts()
    assert popular[0] == "alice/sql-helper" and newest[0] == "bob/poet" and popular != newest
    page.goto(live_server.url + "/adapters/?search=zzzz&license=apache-2.0")
    no_match = page.locator("#no-match").inner_text()
    assert "No adapter matches “zzzz”" in no_match and "Nothing here yet" not in no_match
    page.locator("#no-match").get_by_role("link", name=re.compile("without license")).click()
    assert "license" not in page.url


def test_dark_mode_follows_the_system(live_server, browser, catalog):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 21)", background
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "adapter-dark-laptop.png"), full_page=True)
    context.close()


def test_sign_up_confirms_the_email_then_shows_the_profile(live_server, page, catalog):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign up", exact=True).first.click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Email").fill("carol@example.org")
    page.get_by_label("Password", exact=True).fill("a long enough passphrase 42")
    page.get_by_label("Password confirmation").fill("a long enough passphrase 42")
    page.get_by_role("button", name="Sign up").click()
    assert "carol@example.org" in page.locator("#signup-sent").inner_text()
    assert not User.objects.get(username="carol").is_active
    [message] = mail.outbox
    assert message.to == ["carol@example.org"]
    link = re.search(r"http://\S+/signup/confirm/\S+", message.body).group(0)
    page.goto(link)
    page.wait_for_url("**/users/carol")
    assert page.locator("h1").inner_text() == "carol" and "Welcome, carol" in page.locator(".messages").inner_text()
    assert User.objects.get(username="carol").is_active
    page.goto(live_server.url + "/profile/")  # signed in, and it stays so on the next page
    assert "Signed in as carol" in page.locator("main").inner_text()
    page.goto(link)  # a used link is refused
    assert "does not work" in page.locator("h1").inner_text()


def test_a_public_profile_lists_what_the_visitor_may_see(live_server, page, catalog):
    page.goto(live_server.url + "/users/bob")
    assert page.locator(".repo-name").all_inner_texts() == ["bob/poet"]  # the rejected upload is not public
    page.goto(live_server.url + "/adapters/alice/sql-helper")
    page.locator("h1.repo-title + p").get_by_role("link", name="alice").click()
    page.wait_for_url("**/users/alice")


def test_the_stack_page_has_a_name_a_yaml_recipe_and_its_evals(live_server, page, catalog):
    build = catalog["build"]
    page.goto(f"{live_server.url}/stacks/{build.recipe_hash}")
    assert page.locator("h1").inner_text() == "alice/sql-helper ×0.7 + bob/poet ×0.5, ties"
    assert page.title().startswith("alice/sql-helper ×0.7")
    assert page.locator("#build").inner_text().count("Ready") == 1 and "ready ready" not in page.inner_text("main").lower()
    assert "123 KB" in page.locator("#files").inner_text()  # not "0.12 MB", not bytes
    recipe = page.locator("#recipe-yaml").inner_text()
    assert "method:\n  name: ties" in recipe and "weight: 0.7" in recipe
    assert page.locator("#recipe-yaml + button.copy").count() == 1
    assert 'from_pretrained("stacks/' in page.locator("#use-this").inner_text()
    page.locator("#stack-evals").click()
    page.wait_for_url(f"**/stacks/{build.recipe_hash}/evals")


def test_the_builder_says_sign_in_first_and_explains_each_method(live_server, page, catalog):
    page.goto(live_server.url + "/stacks/new")
    assert "Sign in to build" in page.locator("#sign-in-first").inner_text()
    assert page.get_by_role("button", name="Build").is_disabled()
    page.get_by_label("Method").select_option("ties")
    assert "TIES" in page.locator("#method-help").inner_text()
    assert "fraction of each delta" in page.locator("#density-box").inner_text()
    page.get_by_label("Output").select_option("gguf-q4_k_m")
    assert "4-bit" in page.locator("#output-help").inner_text()
    log_in(page, live_server, "bob")
    page.goto(live_server.url + "/stacks/new")
    page.get_by_label("Search adapters to add").fill("")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Add bob/poet").wait_for()
    offered = page.locator("#search-results button").all_inner_texts()
    assert "Add bob/broken" not in offered  # your own rejected upload is not offered


def test_not_found_is_the_site_page_even_with_debug_on(live_server, page, settings, catalog):
    settings.DEBUG = True
    for path in ("/adapters/nobody/nothing", "/no/route/here"):
        response = page.goto(live_server.url + path)
        assert response.status == 404
        assert page.locator("header.top .brand").count() == 1 and "Django" not in page.content()
        assert page.locator("#not-found-reason").is_visible()


def test_the_favicon_is_served(live_server, page, catalog):
    response = page.goto(live_server.url + "/favicon.ico")
    assert response.status == 200 and "svg" in response.headers["content-type"]
    page.goto(live_server.url + "/")
    assert page.locator("link[rel=icon]").get_attribute("href").endswith("favicon.svg")


def test_redoc_loads_nothing_from_another_host(live_server, page, catalog):
    """No Google Fonts, no cdn.redoc.ly (the hub serves ReDoc's bundle with its logo pointing at the hub's icon)."""
    watch = PageWatch(page, live_server.url)
    page.goto(live_server.url + "/api/v1/redoc/")
    page.wait_for_load_state("networkidle")
    assert "Something went wrong" not in page.inner_text("body"), watch.errors
    page.locator("#redoc-container h1").first.wait_for(timeout=30_000)  # the schema's title: ReDoc rendered it
    assert "fonts.googleapis.com" not in page.content()
    assert watch.foreign == []

"""The upload status page follows each eval run after publication: queued (with its place in the evals queue),
running, finished with its score or failed with its reason; the live region settles once every run is done. The
runs are evaluated by the real task (`run_eval`, the engine on the tiny model), called in this process."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from hub.catalog.models import Version, VersionState
from hub.evals.models import EvalRun, RunState
from hub.evals.services import eval_run_claim, evals_schedule_version
from hub.evals.tasks import run_eval
from tests.catalog.test_version_diff import main_text
from tests.evals.conftest import card
from workers.engine.tiny import TINY_BASE_NAME

pytestmark = pytest.mark.django_db

STATUS, FRAGMENT = "/adapters/alice/sql/v/1/status", "/adapters/alice/sql/v/1/evals"


def settled(html: str, region: str) -> str:
    """The data-settled of the first element carrying it after `region` (the fragment's root when region is "")."""
    return re.search(r'data-settled="(\w+)"', html[html.index(region):] if region else html)[1]


def published(version: Version) -> Version:
    """As the moderator's approval does: published, then the evals scheduled (the receiver of `version_published`,
    which only fires after a real commit)."""
    Version.objects.filter(pk=version.pk).update(state=VersionState.PUBLISHED, published_at=timezone.now())
    version.refresh_from_db()
    evals_schedule_version(version=version)
    return version


@pytest.fixture
def owner_client(make_user) -> tuple[Client, object]:
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)
    return client, alice


def test_the_status_page_follows_each_run_to_its_score(owner_client, make_version, make_adapter, tiny_base_model):
    client, alice = owner_client
    files = {p.name: p.read_bytes() for p in make_adapter(rank=4, alpha=8).iterdir() if p.is_file()}
    files["README.md"] = card({"license": "apache-2.0", "base_model": TINY_BASE_NAME})
    version = make_version(alice, "sql", base_model=tiny_base_model, files=files, state=VersionState.PENDING_REVIEW)

    html = client.get(STATUS).content.decode()
    assert 'id="eval-region"' in html and settled(html, 'id="eval-region"') == "false"  # it waits for publication
    assert "Evaluations start once the version is published" in html

    published(version)
    run = EvalRun.objects.get(version=version)
    assert EvalRun.objects.filter(state=RunState.QUEUED).count() == 2  # the base model's run was queued first
    fragment = client.get(FRAGMENT).content.decode()
    assert settled(fragment, "") == "false"
    assert re.search(r"general-perplexity</strong>.*?Queued</span>\s*<span[^>]*>1 run ahead of it", fragment, re.S)

    claimed = eval_run_claim(run_id=run.pk, lease_seconds=600)
    assert "Running</span>" in client.get(FRAGMENT).content.decode()
    # The worker that claimed it died: its lease runs out and the real task evaluates it again, to the end.
    EvalRun.objects.filter(pk=claimed.pk).update(lease_expires_at=timezone.now())
    assert run_eval(run.pk) == "finished"

    fragment = client.get(FRAGMENT).content.decode()
    run.refresh_from_db()
    score = run.metrics["bits_per_byte"]["value"]
    assert settled(fragment, "") == "true"
    assert re.search(r'bits per byte <strong class="eval-score">[\d.]+</strong>', fragment)
    assert f'href="/evals/runs/{run.pk}"' in fragment and 'href="/adapters/alice/sql/v/1#eval-card"' in fragment
    assert score > 0 and "bits_per_byte" not in fragment
    html = client.get(STATUS).content.decode()
    assert settled(html, 'id="eval-region"') == "true" and "Open the eval card" in html


def test_a_failed_run_says_why(owner_client, make_version, tiny_base_model):
    client, alice = owner_client
    published(make_version(alice, "sql", base_model=tiny_base_model))  # its weights are not a safetensors file
    run = EvalRun.objects.get(version__repository__name="sql")
    assert run_eval(run.pk) == "failed"
    run.refresh_from_db()
    fragment = client.get(FRAGMENT).content.decode()
    assert settled(fragment, "") == "true" and "Failed</span>" in fragment
    assert run.failure_reason and run.failure_reason[:40] in fragment.replace("&#x27;", "'").replace("&quot;", '"')


def test_someone_elses_unpublished_version_has_no_eval_progress(owner_client, make_user, make_version,
                                                                 tiny_base_model):
    client, alice = owner_client
    make_version(alice, "sql", base_model=tiny_base_model, state=VersionState.PENDING_REVIEW)
    bob = Client()
    bob.force_login(make_user("bob"))
    for visitor in (bob, Client()):
        hidden, missing = visitor.get(FRAGMENT), visitor.get("/adapters/alice/sql/v/7/evals")
        assert hidden.status_code == missing.status_code == 404
        assert main_text(hidden).replace("1", "7") == main_text(missing).replace("1", "7")
    assert client.get(FRAGMENT).status_code == 200

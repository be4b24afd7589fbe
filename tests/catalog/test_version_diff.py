"""Comparing two versions of a repository: the card and text files line by line, every file by sha256 and size;
a version the visitor may not see answers 404 exactly as a missing one."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from hub.catalog.diffs import text_diff
from hub.catalog.models import VersionState


def main_text(response) -> str:
    """The page's main part (the header holds a per-request CSRF token for signed-in visitors)."""
    return re.search(r"<main.*?</main>", response.content.decode(), re.S)[0]


pytestmark = pytest.mark.django_db

CARD = "---\nlicense: apache-2.0\ntags: [sql]\n---\n\n# SQL helper\n\n{body}\n"


def config(rank: int) -> bytes:
    return json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}).encode()


@pytest.fixture
def two_versions(make_user, make_version, tiny_base_model):
    alice = make_user("alice")
    make_version(alice, "sql", base_model=tiny_base_model, files={
        "README.md": CARD.format(body="Turns questions into SQL.").encode(), "adapter_config.json": config(4),
        "adapter_model.safetensors": b"\1" * 4000, "notes.txt": b"old notes\n"})
    make_version(alice, "sql", base_model=tiny_base_model, files={
        "README.md": CARD.format(body="Turns questions into <script>alert(1)</script> SQL.").encode(),
        "adapter_config.json": config(8), "adapter_model.safetensors": b"\2" * 6500, "extra.md": b"# new\n"})
    return alice


def test_the_diff_page_shows_card_config_and_files(two_versions):
    response = Client().get("/adapters/alice/sql/diff/1..2")
    assert response.status_code == 200
    html = response.content.decode()
    # The card: the old line removed, the new one added, escaped (a script in a card is text, never markup).
    assert re.search(r'<tr class="diff-removed">.*?Turns questions into SQL\.</td>', html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    # adapter_config.json pretty-printed, so the rank's line is the change.
    config_section = html[html.index("<code>adapter_config.json</code>"):]
    assert re.search(r'diff-removed">.*?&quot;r&quot;: 4,', config_section)
    assert re.search(r'diff-added">.*?&quot;r&quot;: 8,', config_section)
    # Files by sha256: changed (with its size change), added, removed; a removed text file's lines all removed.
    rows = re.findall(r'<tr class="file-(\w+)">\s*<td><a [^>]*>([^<]+)</a>', html)
    assert rows == [("changed", "README.md"), ("changed", "adapter_config.json"), ("changed", "adapter_model.safetensors"),
                    ("added", "extra.md"), ("removed", "notes.txt")]
    assert "+2.5 KB" in html
    assert "3 changed, 1 added, 1 removed" in html
    assert re.search(r'diff-removed">.*?old notes</td>', html)
    assert "<code>adapter_model.safetensors</code>" not in html  # weights are compared by digest, not as text


def test_the_versions_list_links_each_version_to_its_diff(two_versions):
    html = Client().get("/adapters/alice/sql").content.decode()
    assert 'href="/adapters/alice/sql/diff/1..2">compare with v1</a>' in html


def test_a_hidden_version_answers_like_a_missing_one(two_versions, make_user, make_version, tiny_base_model):
    make_version(two_versions, "sql", base_model=tiny_base_model, state=VersionState.PENDING_REVIEW)
    anonymous, bob = Client(), Client()
    bob.force_login(make_user("bob"))
    for client in (anonymous, bob):
        hidden, missing = client.get("/adapters/alice/sql/diff/2..3"), client.get("/adapters/alice/sql/diff/2..9")
        assert hidden.status_code == missing.status_code == 404
        assert main_text(hidden).replace("3", "9") == main_text(missing).replace("3", "9")
    owner = Client()
    owner.force_login(two_versions)
    assert owner.get("/adapters/alice/sql/diff/2..3").status_code == 200
    assert Client().get("/datasets/alice/sql/diff/1..2").status_code == 404  # another kind's URL finds nothing


def test_text_diff_numbers_both_sides_and_folds_unchanged_lines():
    before = "\n".join(f"line {i}" for i in range(1, 21))
    after = before.replace("line 10", "line ten") + "\nline 21"
    diff = text_diff("notes.txt", before, after, context=1)
    assert (diff.added, diff.removed) == (2, 1)
    kinds = [(line.kind, line.old, line.new, line.text) for line in diff.lines]
    assert kinds == [
        ("hunk", None, None, "lines 9–11 → 9–11"),
        ("same", 9, 9, "line 9"), ("removed", 10, None, "line 10"), ("added", None, 10, "line ten"),
        ("same", 11, 11, "line 11"),
        ("hunk", None, None, "lines 20–20 → 20–21"), ("same", 20, 20, "line 20"), ("added", None, 21, "line 21"),
    ]
    assert not text_diff("same.txt", before, before).changed

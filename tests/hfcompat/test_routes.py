"""The Hub's routes live at the site root beside the pages; they must not take the pages' URLs."""

from __future__ import annotations

import pytest
from django.urls import resolve


@pytest.mark.parametrize(("url", "view"), [
    ("/alice/resolve/resolve/main/README.md", "ResolveFile"),
    ("/datasets/alice/pairs/resolve/v1/data/train.jsonl", "ResolveFile"),
    ("/adapters/alice/resolve/v/1", "repository_detail"),  # the page of an adapter named `resolve`
    ("/datasets/alice/resolve/v/1/files/data/x.jsonl", "version_file"),
])
def test_the_hub_routes_leave_the_pages_alone(url, view):
    match = resolve(url)
    assert getattr(match.func, "view_class", match.func).__name__ == view

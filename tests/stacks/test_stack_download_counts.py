"""A stack's downloads are buffered like a version's (hub/catalog/download_counts.py) and folded by the stacks' flush."""

from __future__ import annotations

import pytest

from hub.catalog.download_counts import _redis
from hub.catalog.models import BaseModel
from hub.stacks.models import StackBuild
from hub.stacks.services import stack_record_download
from hub.stacks.tasks import flush_download_counts

pytestmark = pytest.mark.django_db


def test_stack_downloads_reach_the_row_with_the_flush_once():
    base = BaseModel.objects.create(name="test/base", architecture="llama", parameter_count=1, license="mit")
    build = StackBuild.objects.create(recipe_hash="a" * 64, recipe={}, base_model=base, method="linear",
                                      output="merged")
    for _ in range(3):
        stack_record_download(build=build)
    buffered = _redis() is not None  # the embedded default counts in the row at once
    assert StackBuild.objects.get(pk=build.pk).downloads == (0 if buffered else 3)
    assert flush_download_counts() == (3 if buffered else 0)
    assert flush_download_counts() == 0
    assert StackBuild.objects.get(pk=build.pk).downloads == 3

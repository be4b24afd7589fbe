"""Published adapters on the tiny base model, uploaded with their real files."""

from __future__ import annotations

import pytest


@pytest.fixture
def publish_adapter(make_version, tiny_base_model, make_adapter):
    def publish(owner, name: str, **adapter_kwargs):
        folder = make_adapter(**adapter_kwargs)
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        return make_version(owner, name, files=files, base_model=tiny_base_model), folder

    return publish

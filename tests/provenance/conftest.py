"""Provenance tests use the stack tests' published adapters, and keys of their own."""

import pytest

from tests.stacks.conftest import publish_adapter  # noqa: F401 - the same published adapters as the stack tests


@pytest.fixture
def own_keys(settings, tmp_path):
    """Keys of this test only (rotation must not change the key the shared worker signs with)."""
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.SIGNING_KEY = tmp_path / "keys" / "current.pem"
    return settings.SIGNING_KEY_DIR

"""Provenance tests use the stack tests' published adapters."""

from tests.stacks.conftest import publish_adapter  # noqa: F401 - the same published adapters as the stack tests

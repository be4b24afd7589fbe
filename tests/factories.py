"""Catalog data for tests, made through the real services (blobs land in the real blob store)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import pytest

from hub.accounts.models import Role, User
from hub.accounts.services import user_create
from hub.catalog.models import BaseModel, Version, VersionState
from hub.catalog.services import (
    base_model_register,
    blob_put_stream,
    repository_get_or_create,
    repository_search_refresh,
    repository_set_summary,
    version_create,
)
from hub.catalog.signals import version_uploaded
from hub.catalog.tasks import enqueue_validation

_counter = itertools.count()
CARD = "---\nlicense: apache-2.0\nbase_model: nomoat/tiny-llama\ntags: [sql, demo]\ntask: text-generation\n---\n\n# {name}\n\n{body}\n"


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    def make(username: str | None = None, role: str = Role.USER, password: str = "correct-horse-battery") -> User:
        return user_create(username=username or f"user{next(_counter)}", password=password, role=role)

    return make


@pytest.fixture
def tiny_base_model(db, tiny_base) -> BaseModel:
    from workers.engine.tiny import TINY_BASE_NAME

    return base_model_register(name=TINY_BASE_NAME, model_dir=tiny_base, license="apache-2.0")


@pytest.fixture
def make_version(db) -> Callable[..., Version]:
    """A version with the given files (bytes), put straight into `state` (no validation task)."""

    def make(owner: User, name: str, *, kind: str = "adapter", state: str = VersionState.PUBLISHED,
             files: dict[str, bytes] | None = None, body: str = "An adapter.", base_model: BaseModel | None = None,
             summary: str = "") -> Version:
        repo = repository_get_or_create(kind=kind, owner=owner, name=name, base_model=base_model)
        if summary:
            repository_set_summary(repository=repo, summary=summary)
        files = files if files is not None else {
            "README.md": CARD.format(name=name, body=body).encode(),
            "adapter_model.safetensors": f"weights of {name} {next(_counter)}".encode() * 100,
        }
        blobs = {path: blob_put_stream(stream=io.BytesIO(data)) for path, data in files.items()}
        # No validation task: under `transaction=True` a worker left running by an earlier test would take it.
        version_uploaded.disconnect(dispatch_uid="catalog.enqueue_validation")
        try:
            version = version_create(repository=repo, files=blobs, created_by=owner, base_model=base_model)
        finally:
            version_uploaded.connect(enqueue_validation, dispatch_uid="catalog.enqueue_validation")
        Version.objects.filter(pk=version.pk).update(state=state)
        repository_search_refresh(repository_ids=[repo.pk])  # what version_set_state does
        version.refresh_from_db()
        return version

    return make

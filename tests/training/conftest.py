"""Training fixtures: a published dataset of unit conversions (train and eval splits, validated by the real engine)
and API clients for its owner and others."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from hub.accounts.models import TokenScope, User
from hub.accounts.services import api_token_create
from hub.catalog.models import BaseModel, Version, VersionState
from hub.catalog.services import base_model_register, blob_put_stream, repository_get_or_create, version_create
from tests.cli.conftest import cli, cli_env  # noqa: F401 - the CLI fixtures, for test_cli.py
from workers.engine.datasets import validate_dataset

UNITS = [(f"Convert {n} km to m:", f" {n * 1000}") for n in range(1, 25)]
HELD_OUT = [(f"Convert {n} km to m:", f" {n * 1000}") for n in range(25, 31)]
CARD = "---\nlicense: cc0-1.0\ntask: text-generation\n---\n\n# Unit conversions\n"


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def instruction_rows(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"prompt": p, "response": r} for p, r in pairs]


@pytest.fixture
def publish_dataset(db, tmp_path: Path) -> Callable[..., Version]:
    """A dataset version validated by the engine (its stats: splits, formats, rows), put in `state`."""

    def publish(owner: User, name: str, files: dict[str, bytes] | None = None,
                state: str = VersionState.PUBLISHED) -> Version:
        files = files or {"README.md": CARD.encode(), "train.jsonl": jsonl(instruction_rows(UNITS)),
                          "eval.jsonl": jsonl(instruction_rows(HELD_OUT))}
        folder = tmp_path / f"dataset-{owner.username}-{name}"
        folder.mkdir()
        for path, data in files.items():
            (folder / path).write_bytes(data)
        report = validate_dataset(folder)
        repo = repository_get_or_create(kind="dataset", owner=owner, name=name)
        blobs = {path: blob_put_stream(stream=io.BytesIO(data)) for path, data in files.items()}
        version = version_create(repository=repo, files=blobs, created_by=owner)
        Version.objects.filter(pk=version.pk).update(state=state, stats=report.stats, license="cc0-1.0")
        version.refresh_from_db()
        return version

    return publish


@pytest.fixture
def no_chat_base(db, tiny_base: Path, tmp_path: Path) -> BaseModel:
    """The tiny base without a chat template: chat rows cannot be formatted for it."""
    folder = tmp_path / "no-chat"
    shutil.copytree(tiny_base, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return base_model_register(name="nomoat/tiny-no-chat", model_dir=folder, license="apache-2.0")


@pytest.fixture
def api_as() -> Callable[..., APIClient]:
    def client(user: User | None, scope: str = TokenScope.WRITE) -> APIClient:
        api = APIClient()
        if user is not None:
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='t', scope=scope).raw}")
        return api

    return client


def training_request(**changes: object) -> dict:
    request = {"base_model": "nomoat/tiny-llama", "dataset": "alice/units@1", "split": "train", "into": "alice/units-lora",
               "lora": {"rank": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}, "steps": 12,
               "learning_rate": 5e-3, "batch_size": 4, "max_seq_len": 32, "seed": 0}
    return {**request, **changes}

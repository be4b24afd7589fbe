"""The upload → worker → validation pipeline with a real Celery worker process."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from django.utils import timezone

from hub.accounts.models import Role
from hub.catalog.models import Version, VersionState
from hub.catalog.services import blob_put_file, blob_put_stream, repository_get_or_create, version_create
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]
SETTLED = {VersionState.REJECTED, VersionState.PENDING_REVIEW, VersionState.PUBLISHED}


def upload_folder(owner, name: str, folder: Path, *, kind: str = "adapter", base_model=None) -> Version:
    repo = repository_get_or_create(kind=kind, owner=owner, name=name, base_model=base_model)
    blobs = {p.name: blob_put_file(path=p) for p in sorted(folder.iterdir()) if p.is_file()}
    return version_create(repository=repo, files=blobs, created_by=owner, base_model=base_model)


def settled(version: Version, timeout: float = 90) -> Version:
    wait_until(lambda: Version.objects.get(pk=version.pk).state in SETTLED, timeout=timeout,
               what=f"validation of {version}")
    return Version.objects.get(pk=version.pk)


def test_a_good_adapter_reaches_review_with_stats(celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    version = settled(upload_folder(alice, "good", make_adapter(rank=4, alpha=8), base_model=tiny_base_model))
    assert version.state == VersionState.PENDING_REVIEW, version.validation_report
    assert version.stats["rank"] == 4 and version.stats["alpha"] == 8
    assert version.validation_report["ok"] and all(c["passed"] or c["skipped"] for c in version.validation_report["checks"])


def test_every_validated_adapter_gets_a_gguf_lora_that_llama_cpp_loads(celery_worker, make_user, tiny_base_model,
                                                                       make_adapter, tiny_base, tmp_path, client):
    from workers.engine.gguf_export import export_gguf
    from workers.engine.llama_runtime import Adapter, LlamaRuntime

    alice = make_user("alice")
    version = settled(upload_folder(alice, "with-gguf", make_adapter(rank=4, alpha=8), base_model=tiny_base_model))
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    assert "adapter_model.gguf" in version.files.values_list("path", flat=True)
    [check] = [c for c in version.validation_report["checks"] if c["name"] == "gguf.adapter"]
    assert check["passed"]
    client.force_login(alice)
    page = client.get("/adapters/alice/with-gguf").content.decode()
    assert "GGUF adapter for llama.cpp" in page
    adapter_file = tmp_path / "adapter.gguf"
    adapter_file.write_bytes(b"".join(client.get("/adapters/alice/with-gguf/v/1/files/adapter_model.gguf")
                                      .streaming_content))
    base_gguf = tmp_path / "base.gguf"
    export_gguf(tiny_base, base_gguf, dtype="f16")
    with LlamaRuntime(base_gguf, adapters=[Adapter(adapter_file, 1.0)]) as runtime:
        assert len(runtime.greedy(runtime.tokenize("hello"), 4)) == 4


def test_the_base_model_named_in_the_config_is_recorded(celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    version = settled(upload_folder(alice, "no-base-given", make_adapter(rank=4, alpha=8)))  # no base chosen
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    assert version.base_model == tiny_base_model and version.repository.base_model == tiny_base_model


def test_trusted_uploaders_publish_at_once(celery_worker, make_user, tiny_base_model, make_adapter):
    trusted = make_user("tina", role=Role.TRUSTED)
    version = settled(upload_folder(trusted, "fast", make_adapter(rank=2, alpha=4), base_model=tiny_base_model))
    assert version.state == VersionState.PUBLISHED and version.published_at is not None


def test_a_pickle_upload_is_rejected_with_its_reason_and_never_loaded(celery_worker, make_user, tiny_base_model,
                                                                       make_adapter, tmp_path):
    alice = make_user("alice")
    folder = tmp_path / "pickled"
    shutil.copytree(make_adapter(rank=4, alpha=8), folder)
    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04\x95 not loaded, ever")
    version = settled(upload_folder(alice, "pickled", folder, base_model=tiny_base_model))
    assert version.state == VersionState.REJECTED
    assert "safetensors" in version.state_reason


def test_an_archive_upload_is_unpacked_into_plain_files(celery_worker, make_user, tiny_base_model, make_adapter):
    alice = make_user("alice")
    adapter = make_adapter(rank=4, alpha=8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in adapter.iterdir():
            archive.write(path, f"my-adapter/{path.name}")
    buffer.seek(0)
    repo = repository_get_or_create(kind="adapter", owner=alice, name="zipped", base_model=tiny_base_model)
    version = version_create(repository=repo, files={"upload.zip": blob_put_stream(stream=buffer)}, created_by=alice)
    version = settled(version)
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    assert sorted(version.files.values_list("path", flat=True)) == [
        "README.md", "adapter_config.json", "adapter_model.gguf", "adapter_model.safetensors",
        "model.sig", "provenance.intoto.jsonl"]  # no upload.zip: its files, plus what the hub adds


def test_a_worker_killed_mid_validation_leaves_the_version_to_be_validated_again(celery_worker, make_user, settings,
                                                                                tmp_path):
    alice = make_user("alice")
    folder = tmp_path / "big-dataset"
    folder.mkdir()
    row = json.dumps({"prompt": "What is two plus two?", "response": "Four."})
    with open(folder / "train.jsonl", "w") as handle:
        for i in range(1_500_000):  # large enough that validation takes seconds
            handle.write(row[:-1] + f', "id": {i}}}\n')
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\nA big dataset.\n")
    version = upload_folder(alice, "big", folder, kind="dataset")
    scratch = settings.WORK_DIR / "validate" / str(version.pk)
    wait_until(lambda: Version.objects.get(pk=version.pk).state == VersionState.VALIDATING and scratch.is_dir(),
               timeout=60, interval=0.05, what="validation to start")
    celery_worker.kill()
    try:
        lease = Version.objects.get(pk=version.pk).lease_expires_at
        assert Version.objects.get(pk=version.pk).state == VersionState.VALIDATING  # died mid-task
        time.sleep(max((lease - timezone.now()).total_seconds(), 0) + 0.5)
    finally:
        celery_worker.start()  # a new worker picks up what the dead one left
    version = settled(version, timeout=180)
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    assert version.stats["rows"] == 1_500_000  # every row read by the second worker
    assert not scratch.exists()  # the dead worker's scratch went with the second one's

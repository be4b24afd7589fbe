"""`nomoat push`: chunked uploads, following validation, rejections, and resuming an upload that died."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from hub.catalog.models import Repository, UploadSession, Version, VersionState
from nomoat_cli import client as cli_client
from nomoat_cli.errors import ExitCode
from nomoat_cli.main import main
from tests.cli.conftest import write_token

pytestmark = pytest.mark.django_db(transaction=True)


def test_push_uploads_a_folder_and_prints_the_validation_checks(cli, celery_worker, make_user, tiny_base_model,
                                                                 make_adapter):
    alice = make_user("alice")
    result = cli.run("push", str(make_adapter(rank=4, alpha=8)), "alice/sql", "--summary", "SQL helper",
                     token=write_token(alice))
    assert result.returncode == 0, result.stderr
    assert "uploaded adapter alice/sql@1 (3 files)" in result.stdout
    assert "alice/sql@1: pending_review" in result.stdout
    assert any(line.split()[:2] == ["ok", "config.rank"] for line in result.stdout.splitlines())
    assert "validating alice/sql@1" in result.stderr  # the progress display, on stderr
    version = Version.objects.get(repository__name="sql")
    assert version.state == VersionState.PENDING_REVIEW and version.repository.summary == "SQL helper"
    assert version.base_model == tiny_base_model  # declared in adapter_config.json
    assert json.loads(cli.journal_file.read_text()) == {}  # every session was used by the version


def test_a_rejected_push_exits_2_naming_the_failing_check(cli, celery_worker, make_user, tiny_base_model,
                                                          make_adapter, tmp_path):
    alice = make_user("alice")
    folder = tmp_path / "broken"
    shutil.copytree(make_adapter(rank=4, alpha=8), folder)
    (folder / "adapter_model.safetensors").unlink()
    result = cli.run("push", str(folder), "alice/broken", token=write_token(alice))
    assert result.returncode == ExitCode.API
    assert "alice/broken@1: rejected" in result.stdout
    assert any(line.split()[:2] == ["FAIL", "files.required"] for line in result.stdout.splitlines())
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("nomoat: error: alice/broken@1 was rejected: files.required:")
    assert "adapter_model.safetensors" in error


def test_push_resumes_an_upload_that_died_from_the_servers_offset(cli, celery_worker, make_user, tiny_base_model,
                                                                  make_adapter, monkeypatch, capsys):
    alice = make_user("alice")
    folder = make_adapter(rank=8, alpha=16)
    weights = (folder / "adapter_model.safetensors").read_bytes()
    chunk = 2048
    monkeypatch.setenv("NOMOAT_TOKEN", write_token(alice))

    # First run, in-process: after three chunks of the weights the network goes away for good.
    real_request = cli_client.Client.request

    def dropping(self, method, path, **kwargs):
        sent = kwargs.get("headers", {}).get("Content-Range", "")
        if method == "PUT" and sent.endswith(f"/{len(weights)}") and sent.startswith(f"bytes {3 * chunk}-"):
            raise cli_client.NetworkError("cannot reach the hub (the test pulled the cable)")
        return real_request(self, method, path, **kwargs)

    monkeypatch.setattr(cli_client.Client, "request", dropping)
    assert main(["push", str(folder), "alice/resumed", "--chunk-size", str(chunk), "-q"]) == ExitCode.NETWORK
    assert "the test pulled the cable" in capsys.readouterr().err
    session = UploadSession.objects.get(filename="adapter_model.safetensors")
    assert session.state == UploadSession.State.OPEN and session.received == 3 * chunk
    assert not Version.objects.exists()
    monkeypatch.setattr(cli_client.Client, "request", real_request)

    # Second run, the real script: it finds the session in its journal and sends only the rest.
    result = cli.run("push", str(folder), "alice/resumed", "--chunk-size", "2K", token=write_token(alice))
    assert result.returncode == 0, result.stderr
    assert "upload adapter_model.safetensors" in result.stderr and "resumed at 6.0 KiB" in result.stderr
    assert UploadSession.objects.filter(filename="adapter_model.safetensors").count() == 1  # the same session
    version = Version.objects.get(repository__name="resumed")
    assert version.state == VersionState.PENDING_REVIEW, version.state_reason
    stored = version.files.get(path="adapter_model.safetensors").blob.sha256
    assert stored == hashlib.sha256(weights).hexdigest()


def test_push_needs_a_login_and_the_owners_namespace(cli, make_user, make_adapter):
    alice, bob = make_user("alice"), make_user("bob")
    folder = str(make_adapter(rank=4, alpha=8))
    anonymous = cli.run("push", folder, "alice/sql")
    assert anonymous.returncode == ExitCode.USAGE and "not logged in" in anonymous.stderr
    elsewhere = cli.run("push", folder, "alice/sql", "--no-wait", token=write_token(bob))
    assert elsewhere.returncode == ExitCode.API
    assert elsewhere.stderr.splitlines()[-1] == "nomoat: error: you can upload only to your own namespace (bob/…)"
    assert not Repository.objects.filter(owner=alice).exists()

"""`nomoat pull`: verified downloads, resuming a `.part` with a Range request, refusing a corrupt result."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub.catalog.models import Version, VersionState
from hub.catalog.services import versions_flush_downloads
from nomoat_cli import transfer
from nomoat_cli.client import Client, api_path
from nomoat_cli.errors import ExitCode
from tests.cli.conftest import write_token
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
WEIGHTS = "adapter_model.safetensors"


def downloads(version: Version) -> int:
    """The hub counts a download when the weights are fetched from byte 0, not for a resumed range (folded into
    the row by the beat's flush)."""
    versions_flush_downloads()
    return Version.objects.get(pk=version.pk).downloads


def test_pull_downloads_the_latest_published_version_verified(cli, make_user, publish_adapter, make_version):
    alice = make_user("alice")
    version, folder = publish_adapter(alice, "sql", rank=4, alpha=8)
    make_version(alice, "sql", state=VersionState.REJECTED)  # newer, visible to its owner, but not published
    result = cli.run("pull", "alice/sql", "-o", "out", token=write_token(alice))
    assert result.returncode == 0, result.stderr
    assert "adapter alice/sql@1 (published)" in result.stdout and "sha256 verified" in result.stdout
    out = cli.cwd / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in folder.iterdir())
    # Counted after the response is sent: wait for the server to have done it.
    wait_until(lambda: downloads(version) >= 1, timeout=30, what="the download")
    assert downloads(version) == 1

    again = cli.run("pull", "alice/sql@1", "-o", "out")  # everything is in place: nothing is fetched
    assert again.returncode == 0 and "3 already there" in again.stdout
    assert downloads(version) == 1


def test_an_interrupted_pull_resumes_where_the_part_file_ends(cli, make_user, publish_adapter):
    alice = make_user("alice")
    version, folder = publish_adapter(alice, "sql", rank=8, alpha=16)
    weights = (folder / WEIGHTS).read_bytes()
    out = cli.cwd / "sql"
    out.mkdir()
    (out / f"{WEIGHTS}.part").write_bytes(weights[:5000])  # what an interrupted run left behind
    result = cli.run("pull", "alice/sql")  # default folder: ./sql
    assert result.returncode == 0, result.stderr
    assert "resumed with 4.9 KiB already here" in result.stderr
    assert (out / WEIGHTS).read_bytes() == weights and not (out / f"{WEIGHTS}.part").exists()
    assert downloads(version) == 0  # the weights were asked for from byte 5000 on, never from 0


def test_a_corrupt_download_fails_verification_and_is_not_left_in_place(cli, make_user, publish_adapter):
    alice = make_user("alice")
    version, folder = publish_adapter(alice, "sql", rank=4, alpha=8)
    out = cli.cwd / "out"
    out.mkdir()
    (out / f"{WEIGHTS}.part").write_bytes(b"\0" * 4096)  # a prefix that is not the file's
    result = cli.run("pull", "alice/sql", "-o", "out")
    assert result.returncode == ExitCode.VERIFICATION
    error = result.stderr.strip().splitlines()[-1]
    expected = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    assert error.startswith(f"nomoat: error: {WEIGHTS}: sha256 mismatch (expected {expected}, got ")
    assert not (out / WEIGHTS).exists() and not (out / f"{WEIGHTS}.part").exists()

    retry = cli.run("pull", "alice/sql", "-o", "out")  # nothing bad is left to resume from
    assert retry.returncode == 0 and (out / WEIGHTS).read_bytes() == (folder / WEIGHTS).read_bytes()


def test_an_owner_pulls_an_unpublished_version_only_with_its_token(cli, make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "draft", state=VersionState.PENDING_REVIEW)
    anonymous = cli.run("pull", "alice/draft@1", "-o", "draft")
    assert anonymous.returncode == ExitCode.API
    assert anonymous.stderr.strip() == "nomoat: error: no adapter or dataset alice/draft (adapter alice/draft not found)"
    owner = cli.run("pull", "alice/draft@1", "-o", "draft", token=write_token(alice))
    assert owner.returncode == 0, owner.stderr
    unpinned = cli.run("pull", "alice/draft", token=write_token(alice))
    assert unpinned.returncode == ExitCode.API and "has no published version; pin one with alice/draft@N" in \
        unpinned.stderr


def test_parallel_ranges_land_at_their_offsets_and_resume_after_ctrl_c(live_server, make_user, publish_adapter,
                                                                         monkeypatch, tmp_path):
    alice = make_user("alice")
    _, folder = publish_adapter(alice, "sql", rank=8, alpha=16)
    weights = (folder / WEIGHTS).read_bytes()
    client = Client(live_server.url)
    remote = transfer.RemoteFile(client.url(api_path("adapters", "alice", "sql", "versions", 1, "files", WEIGHTS)),
                                 WEIGHTS, len(weights), hashlib.sha256(weights).hexdigest())
    dest = tmp_path / WEIGHTS
    ranges: list[str] = []
    real_request = Client.request

    def recording(self, method, path, **kwargs):
        ranges.append(kwargs["headers"]["Range"])
        return real_request(self, method, path, **kwargs)

    monkeypatch.setattr(Client, "request", recording)
    monkeypatch.setattr(transfer, "READ_BYTES", 1024)
    real_body = transfer.iter_body

    def interrupted(response, chunk_bytes):
        for i, chunk in enumerate(real_body(response, chunk_bytes)):
            if i == 2:
                raise KeyboardInterrupt  # Ctrl-C while every range is part-way through
            yield chunk

    monkeypatch.setattr(transfer, "iter_body", interrupted)
    with pytest.raises(KeyboardInterrupt):
        transfer.download_file(client, remote, dest, progress=False, parallel_threshold=1, connections=4)
    assert len(ranges) == 4 and not dest.exists()
    sidecar = Path(f"{dest}.part.json")
    assert sidecar.exists()

    monkeypatch.setattr(transfer, "iter_body", real_body)
    ranges.clear()
    assert transfer.download_file(client, remote, dest, progress=False, parallel_threshold=1, connections=4)
    assert dest.read_bytes() == weights and not sidecar.exists() and not Path(f"{dest}.part").exists()
    asked = sum(int(end) - int(start) + 1 for start, end in (r.removeprefix("bytes=").split("-") for r in ranges))
    assert len(ranges) == 4 and asked < len(weights)  # the second run asked only for the holes

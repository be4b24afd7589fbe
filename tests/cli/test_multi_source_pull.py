"""`nomoat pull` of a large file from three sources at once (the hub, a throttled mirror, a mirror that corrupts what
it sends): every piece checked against the Metalink's sha-256, the corrupt source banned and named, and an
interrupted pull resumed without fetching again what it had verified."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from nomoat_cli import transfer
from nomoat_cli.errors import ExitCode
from nomoat_cli.main import main
from tests.cli.conftest import write_token
from tests.provenance.mirrors import Mirror, serving
from workers.engine.pieces import piece_length

pytestmark = pytest.mark.django_db(transaction=True)
SIZE = 12 * 1024**2  # the 256 MiB is bench/multi_source_pull.py's
NAME = "blob.bin"


@pytest.fixture
def big_file(make_user, make_version):
    data, alice = os.urandom(SIZE), make_user("alice")
    make_version(alice, "big", kind="dataset", files={NAME: data, "README.md": b"# big\n"})
    return data, hashlib.sha256(data).hexdigest(), alice


def fetched_bytes(stderr: str) -> tuple[int, int]:
    match = re.search(rf"{NAME}: (\d+) bytes fetched from \d+ sources, (\d+) bytes were already verified", stderr)
    assert match, stderr
    return int(match[1]), int(match[2])


def test_pull_from_three_sources_bans_the_corrupt_one(cli, big_file, settings):
    data, sha, alice = big_file
    throttled = Mirror({sha: data}, bytes_per_second=2 * 1024**2)
    corrupt = Mirror({sha: data}, corrupt_from=SIZE // 3)
    with serving(throttled, corrupt):
        settings.BLOB_MIRROR_URLS = [throttled.url, corrupt.url]
        result = cli.run("pull", "alice/big", "-o", "big", "--kind", "dataset", "-q", token=write_token(alice))
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256((cli.cwd / "big" / NAME).read_bytes()).hexdigest() == sha
    assert not throttled.authorization_seen and not corrupt.authorization_seen  # the token went to the hub only
    assert len([line for line in result.stderr.splitlines() if f"{NAME} from " in line]) == 3, result.stderr
    corrupt_line = next(line for line in result.stderr.splitlines() if corrupt.url.format(sha256=sha) in line)
    assert "banned: piece" in corrupt_line and "did not match its sha-256" in corrupt_line
    hub_line = next(line for line in result.stderr.splitlines() if "/api/v1/datasets/alice/big/" in line)
    assert "banned" not in hub_line and int(re.search(r": (\d+) pieces", hub_line)[1]) > 0
    assert throttled.sent < SIZE  # the throttled source did not have to send it all
    assert not list((cli.cwd / "big").glob("*.part*"))


def test_an_interrupted_pull_resumes_without_fetching_verified_pieces_again(cli, big_file, monkeypatch):
    data, sha, _ = big_file
    piece = piece_length(SIZE)
    accept = transfer.Swarm.accept
    accepted = []

    def interrupt_after_some(self, source, index, chunk, fd):
        ok = accept(self, source, index, chunk, fd)
        accepted.append(index)
        if len(accepted) == 20:
            raise KeyboardInterrupt  # as Ctrl-C would, mid-download
        return ok

    monkeypatch.setattr(transfer.Swarm, "accept", interrupt_after_some)
    assert main(["pull", "alice/big", "-o", str(cli.cwd / "big"), "--kind", "dataset", "-q"]) == ExitCode.INTERRUPTED
    monkeypatch.undo()
    part = cli.cwd / "big" / f"{NAME}.part"
    assert part.exists() and (cli.cwd / "big" / f"{NAME}.part.pieces.json").exists()

    result = cli.run("pull", "alice/big", "-o", "big", "--kind", "dataset", "-q")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256((cli.cwd / "big" / NAME).read_bytes()).hexdigest() == sha
    fetched, had = fetched_bytes(result.stderr)
    assert had >= 19 * piece  # what the first run verified was kept
    assert fetched <= SIZE - had + 4 * piece  # and at most a few pieces came again (the endgame's duplicates)

"""`nomoat verify` on pulled folders (a version, and a stack back to its two users' uploads), and the independent
`model_signing verify` on the same folders; tampering, a wrong key and a revoked key each fail with exit code 3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.catalog.models import Version
from hub.provenance.keys import key_revoke, key_rotate, public_keys
from hub.provenance.signing import version_sign
from nomoat_cli.errors import ExitCode
from tests.cli.conftest import write_token
from tests.cli.test_stacks import RECIPE
from workers.engine.signing import SIGNATURE_FILE, ensure_private_key, public_key_pem

pytestmark = pytest.mark.django_db(transaction=True)
MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
WEIGHTS = "adapter_model.safetensors"


def model_signing_verify(folder: Path, pem: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(folder / SIGNATURE_FILE),
                           "--public_key", str(pem), str(folder)], capture_output=True, text=True, timeout=120,
                          check=False)


def signed(publish_adapter, owner, name: str, **kwargs) -> Version:
    version, _ = publish_adapter(owner, name, **kwargs)
    version_sign(version=version)
    return version


def test_a_pulled_version_verifies_offline_and_tampering_is_named(cli, make_user, publish_adapter, live_server,
                                                                    settings, tmp_path):
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.SIGNING_KEY = tmp_path / "keys" / "current.pem"
    signed(publish_adapter, make_user("alice"), "sql", rank=4, alpha=8)
    assert cli.run("pull", "alice/sql", "-o", "sql").returncode == 0
    folder = cli.cwd / "sql"
    assert (folder / SIGNATURE_FILE).is_file()

    result = cli.run("verify", "sql")
    assert result.returncode == 0, result.stderr
    assert "4 files match model.sig, signed by hub key" in result.stdout and "(current)" in result.stdout
    assert "validated: adapter alice/sql@1 uploaded by alice" in result.stdout

    pem = tmp_path / "hub.pem"
    pem.write_text(__import__("requests").get(f"{live_server.url}/api/v1/keys/current.pem", timeout=10).text)
    independent = model_signing_verify(folder, pem)
    assert independent.returncode == 0 and "Verification succeeded" in independent.stdout, independent.stderr

    offline = dict(cli.env, NOMOAT_ENDPOINT="http://127.0.0.1:9")  # nothing listens: the cached keys are used
    again = subprocess.run([str(Path(sys.executable).with_name("nomoat")), "verify", "sql"], env=offline, cwd=cli.cwd,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr

    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(public_key_pem(ensure_private_key(tmp_path / "other-private.pem")))
    refused = cli.run("verify", "sql", "--key", str(wrong))
    assert refused.returncode == ExitCode.VERIFICATION
    assert "model.sig: signed by key" in refused.stderr and "not one of the keys given" in refused.stderr

    data = bytearray((folder / WEIGHTS).read_bytes())
    data[100] ^= 0x40
    (folder / WEIGHTS).write_bytes(bytes(data))
    tampered = cli.run("verify", "sql")
    assert tampered.returncode == ExitCode.VERIFICATION
    assert f"nomoat: error: verification failed: sql: {WEIGHTS} was changed (sha256 " in tampered.stderr
    assert model_signing_verify(folder, pem).returncode == 1

    data[100] ^= 0x40
    (folder / WEIGHTS).write_bytes(bytes(data))
    signer = result.stdout.split("signed by hub key ")[1][:16]
    key_rotate()  # the version stays signed by the retired key, which is still listed
    rotated = cli.run("verify", "sql", "--refresh-keys")
    assert rotated.returncode == 0 and f"signed by hub key {signer}… (previous)" in rotated.stdout
    key_revoke(next(k.key_id for k in public_keys() if k.status == "previous"))
    cached = cli.run("verify", "sql")  # the cache does not know of the revocation yet
    assert cached.returncode == 0
    revoked = cli.run("verify", "sql", "--refresh-keys")
    assert revoked.returncode == ExitCode.VERIFICATION and "which the hub has revoked" in revoked.stderr


def test_a_pulled_stack_verifies_back_to_both_users_uploads(cli, celery_worker, make_user, publish_adapter,
                                                            live_server, tmp_path):
    alice, bob = make_user("alice"), make_user("bob")
    signed(publish_adapter, alice, "sql", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=11)
    signed(publish_adapter, bob, "poet", rank=8, alpha=8, target_modules=("q_proj", "down_proj"), seed=12)
    (cli.cwd / "recipe.yaml").write_text(RECIPE)
    pulled = cli.run("pull", "recipe.yaml", "-o", "stack", token=write_token(alice))
    assert pulled.returncode == 0, pulled.stderr
    folder = cli.cwd / "stack"
    assert (folder / "provenance" / "alice" / "sql" / "v1" / SIGNATURE_FILE).is_file()
    assert (folder / "provenance" / "bob" / "poet" / "v1" / SIGNATURE_FILE).is_file()

    result = cli.run("verify", "stack")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "built: stack" in out and "(ties → merged) on nomoat/tiny-llama from alice/sql@1 × 0.7 (uploaded by " \
                                     "alice), bob/poet@1 × 0.5 (uploaded by bob)" in out
    assert "validated: adapter alice/sql@1 uploaded by alice" in out
    assert "validated: adapter bob/poet@1 uploaded by bob" in out

    pem = tmp_path / "hub.pem"
    pem.write_text(__import__("requests").get(f"{live_server.url}/api/v1/keys/current.pem", timeout=10).text)
    independent = model_signing_verify(folder, pem)
    assert independent.returncode == 0, independent.stderr

    (folder / "provenance" / "bob" / "poet" / "v1" / SIGNATURE_FILE).unlink()
    missing = cli.run("verify", "stack")
    assert missing.returncode == ExitCode.VERIFICATION
    assert "provenance/bob/poet/v1/model.sig is missing" in missing.stderr

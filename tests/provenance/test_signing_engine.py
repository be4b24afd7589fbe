"""model.sig and attestations on plain folders (workers/engine/signing.py), checked by our verifier and by the real
`model_signing` command; every kind of tampering fails and names the file."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workers.engine.fsutil import sha256_file
from workers.engine.signing import (
    ATTESTATIONS_FILE,
    SIGNATURE_FILE,
    VALIDATION,
    ProvenanceError,
    PublicKey,
    ensure_private_key,
    key_id,
    public_key_pem,
    sign_attestations,
    sign_folder,
    statement,
    verify_folder,
)

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return ensure_private_key(tmp_path / "keys" / "hub.pem")


@pytest.fixture
def signed(tmp_path: Path, key: Path) -> Path:
    folder = tmp_path / "alice--sql--v1"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(50_000))
    (folder / "adapter_config.json").write_text('{"r": 4}')
    (folder / "README.md").write_text("# sql\n")
    files = {p.name: sha256_file(p) for p in folder.iterdir()}
    (folder / ATTESTATIONS_FILE).write_bytes(sign_attestations(
        [statement(files, VALIDATION, {"repository": "alice/sql", "version": 1, "uploaded_by": "alice"})], key))
    sign_folder(folder, key)
    return folder


def hub_key(key: Path) -> list[PublicKey]:
    return [PublicKey(public_key_pem(key))]


def model_signing_verify(folder: Path, key: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    pem = tmp_path / "hub-public.pem"
    pem.write_bytes(public_key_pem(key))
    return subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(folder / SIGNATURE_FILE),
                           "--public_key", str(pem), str(folder)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_key_is_made_once_private_and_found_again(tmp_path: Path):
    path = ensure_private_key(tmp_path / "k" / "current.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert ensure_private_key(path).read_bytes() == first  # not replaced
    assert not [p for p in path.parent.iterdir() if p.name != "current.pem"]  # no temporary files left
    assert key_id(public_key_pem(path)) == PublicKey(public_key_pem(path)).key_id


def test_a_signed_folder_verifies_with_ours_and_with_model_signing(signed: Path, key: Path, tmp_path: Path):
    result = verify_folder(signed, hub_key(key))
    assert set(result.files) == {"adapter_model.safetensors", "adapter_config.json", "README.md", ATTESTATIONS_FILE}
    assert result.files["README.md"] == sha256_file(signed / "README.md")
    [validation] = result.statements
    assert validation["predicateType"] == VALIDATION and validation["predicate"]["uploaded_by"] == "alice"
    bundle = json.loads((signed / SIGNATURE_FILE).read_text())
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == key_id(public_key_pem(key))
    cli = model_signing_verify(signed, key, tmp_path)
    assert cli.returncode == 0 and "Verification succeeded" in cli.stdout, cli.stderr


def test_one_changed_byte_fails_and_names_the_file(signed: Path, key: Path, tmp_path: Path):
    weights = signed / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1234] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ProvenanceError, match="adapter_model.safetensors was changed \\(sha256 "):
        verify_folder(signed, hub_key(key))
    cli = model_signing_verify(signed, key, tmp_path)
    assert cli.returncode == 1 and "adapter_model.safetensors" in cli.stderr


def test_swapped_files_fail_naming_both(signed: Path, key: Path):
    readme, config = signed / "README.md", signed / "adapter_config.json"
    a, b = readme.read_bytes(), config.read_bytes()
    readme.write_bytes(b)
    config.write_bytes(a)
    with pytest.raises(ProvenanceError) as failure:
        verify_folder(signed, hub_key(key))
    assert "README.md was changed" in str(failure.value) and "adapter_config.json was changed" in str(failure.value)


def test_a_missing_or_added_file_fails_and_is_named(signed: Path, key: Path):
    moved = signed.parent / "config-elsewhere.json"
    shutil.move(signed / "adapter_config.json", moved)
    with pytest.raises(ProvenanceError, match="adapter_config.json is missing \\(signed with sha256 "):
        verify_folder(signed, hub_key(key))
    shutil.move(moved, signed / "adapter_config.json")
    (signed / "extra.py").write_text("import os\n")
    with pytest.raises(ProvenanceError, match="extra.py is not in the signed files"):
        verify_folder(signed, hub_key(key))


def test_a_wrong_or_revoked_key_fails_clearly(signed: Path, key: Path, tmp_path: Path):
    other = ensure_private_key(tmp_path / "other.pem")
    with pytest.raises(ProvenanceError, match="model.sig: signed by key .* not one of the keys given"):
        verify_folder(signed, hub_key(other))
    with pytest.raises(ProvenanceError, match="which the hub has revoked"):
        verify_folder(signed, [PublicKey(public_key_pem(key), "revoked")])
    cli = model_signing_verify(signed, other, tmp_path)
    assert cli.returncode == 1 and "Key mismatch" in cli.stderr


def test_an_altered_signature_or_attestation_fails(signed: Path, key: Path):
    bundle_path = signed / SIGNATURE_FILE
    bundle = json.loads(bundle_path.read_text())
    original = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = original[:-8] + ("A" * 8 if original[-8:] != "A" * 8 else "B" * 8)
    bundle_path.write_text(json.dumps(bundle))
    with pytest.raises(ProvenanceError, match="alice--sql--v1: the signature in model.sig does not match"):
        verify_folder(signed, hub_key(key))
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = original
    bundle_path.write_text(json.dumps(bundle))
    verify_folder(signed, hub_key(key))
    # An attestation edited after signing: model.sig lists the attestation file's hash too.
    attestations = signed / ATTESTATIONS_FILE
    envelope = json.loads(attestations.read_text())
    envelope["payload"] = base64.b64encode(base64.b64decode(envelope["payload"]).replace(b"alice", b"mallory")).decode()
    attestations.write_text(json.dumps(envelope) + "\n")
    with pytest.raises(ProvenanceError, match=f"{ATTESTATIONS_FILE} was changed"):
        verify_folder(signed, hub_key(key))


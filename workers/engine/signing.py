"""Signed provenance of a folder of files, in the OpenSSF model-signing format plus in-toto attestations.

`model.sig` is what the `model_signing` package writes (`model_signing sign key`): a Sigstore bundle holding a
DSSE envelope over an in-toto statement whose predicate lists every file's sha256, signed with an EC key. Its
statement's format is fixed by model_signing (a verifier rejects other predicates), so what a worker did is said
in a second file, `provenance.intoto.jsonl`: an in-toto attestation bundle (one DSSE envelope per line, signed
with the same key by securesystemslib), each statement naming its outputs (subjects) and inputs by sha256.
model.sig covers the attestation file like any other, so one signature check covers the folder.

What is attested after a version is signed (its evaluations) cannot enter model.sig without changing the version's
signature, so it is kept beside it: `attestations/<name>.intoto.jsonl`, a bundle of its own whose statements name the
signed files by sha256, signed with the hub's key like the others. model.sig leaves the `attestations/` folder out
(its manifest records the ignored paths, so `model_signing verify` leaves it out too); `verify_folder` checks every
file there. A hub that mirrors another's version keeps the origin's model.sig and adds its own statement there
(`MIRROR`: what it verified and validated again), so the copy still verifies against the origin's key.

Keys are P-256 private keys in PEM files; a key's id is the sha256 of its public key's PEM (SubjectPublicKeyInfo),
which is the hint model_signing records in the bundle, so a verifier finds the key that signed.

Pure: no Django, no hub. The hub signs with it, `nomoat verify` checks with it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNATURE_FILE = "model.sig"
ATTESTATIONS_FILE = "provenance.intoto.jsonl"
# A stack carries its adapters' bundles here, so it verifies offline back to the uploads.
UPSTREAM_DIR = "provenance"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_BASE = "https://nomoat.dev/attestation"
VALIDATION = f"{PREDICATE_BASE}/validation/v1"
STACK_BUILD = f"{PREDICATE_BASE}/stack-build/v1"
QUANTIZATION = f"{PREDICATE_BASE}/quantization/v1"
VERIFICATION = f"{PREDICATE_BASE}/verification-gates/v1"
EVALUATION = f"{PREDICATE_BASE}/evaluation/v1"
# A hub that mirrors another's version keeps the origin's model.sig and says, signed with its own key, that it
# verified that bundle and validated the files again.
MIRROR = f"{PREDICATE_BASE}/mirror/v1"
# Attestations made after the signature (evaluations), each a bundle of its own.
ATTESTATIONS_DIR = "attestations"
# What model_signing leaves out of the manifest: its own file, the later attestations (and git's files, as its CLI
# does by default).
IGNORED = (SIGNATURE_FILE, ATTESTATIONS_DIR)


class ProvenanceError(ValueError):
    """A folder that does not verify; the message names the file and what was expected."""


# --- keys -------------------------------------------------------------------------------------------------------------


def ensure_private_key(path: Path) -> Path:
    """The EC P-256 private key at `path`, generated on first use: written 0600 beside it, then linked into place,
    so two workers starting at once agree on one key (the second link fails and its key is dropped)."""
    if path.is_file():
        return path
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path


def public_key_pem(private_key_path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_path.read_bytes(), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_pem: bytes) -> str:
    """The id model_signing records for a key (`verificationMaterial.publicKey.hint`)."""
    return hashlib.sha256(public_pem).hexdigest()


def _sslib_key(public_pem: bytes):
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(serialization.load_pem_public_key(public_pem), keyid=key_id(public_pem))


# --- signing ----------------------------------------------------------------------------------------------------------


def statement(subjects: Mapping[str, str], predicate_type: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto v1 statement about files {name: sha256}."""
    return {"_type": STATEMENT_TYPE, "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
            "predicateType": predicate_type, "predicate": dict(predicate)}


def attestation_path(name: str) -> str:
    """Where a later attestation named `name` (e.g. a suite id, "task:owner/data:eval") lives in a signed folder:
    a readable slug and a digest of the name, so two names never share a file."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "attestation"
    return f"{ATTESTATIONS_DIR}/{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}.intoto.jsonl"


def is_later_attestation(path: str) -> bool:
    """A file of the attestations folder: made by the hub after the signature, outside model.sig's list."""
    return path.split("/", 1)[0] == ATTESTATIONS_DIR


def is_mirror_attestation(path: str) -> bool:
    """A hub's attestation that it mirrored a version (`attestation_path("mirror-<host>")`)."""
    return path.startswith(f"{ATTESTATIONS_DIR}/mirror-")


def attestation_statements(bundle: bytes) -> list[dict[str, Any]]:
    """The statements of an attestation bundle, unverified (the hub reads its own stored bundles with this)."""
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in bundle.decode().splitlines() if line]


def sign_attestations(statements: Iterable[Mapping[str, Any]], private_key_path: Path) -> bytes:
    """An in-toto attestation bundle: one signed DSSE envelope (JSON) per line."""
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    private = serialization.load_pem_private_key(private_key_path.read_bytes(), None)
    signer = CryptoSigner(private, _sslib_key(public_key_pem(private_key_path)))
    lines = []
    for item in statements:
        envelope = Envelope(payload=json.dumps(item, sort_keys=True).encode(), payload_type=PAYLOAD_TYPE, signatures={})
        envelope.sign(signer)
        lines.append(json.dumps(envelope.to_dict(), sort_keys=True))
    return ("\n".join(lines) + "\n").encode()


def sign_folder(folder: Path, private_key_path: Path) -> Path:
    """Write `folder/model.sig` exactly as `model_signing sign key --private_key KEY FOLDER` does."""
    import model_signing

    hashing = model_signing.hashing.Config().set_ignored_paths(paths=list(IGNORED))
    signature = folder / SIGNATURE_FILE
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key_path).set_hashing_config(
        hashing).sign(folder, signature)
    return signature


# --- verifying --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    pem: bytes
    status: str = "current"  # current | previous | revoked
    hub: str = ""  # the hub that serves it (its /api/v1/keys), when known: who signed, for people

    @property
    def key_id(self) -> str:
        return key_id(self.pem)


@dataclass
class Verified:
    """What a folder's signatures say: the signing key, every file's sha256 and the attestations' statements."""

    folder: Path
    key: PublicKey
    files: dict[str, str]  # path -> sha256, as signed
    statements: list[dict[str, Any]] = field(default_factory=list)
    signers: list[PublicKey] = field(default_factory=list)  # the key that signed each of `statements`
    upstream: list[Verified] = field(default_factory=list)  # the adapters' bundles a stack carries


def bundle_key_id(signature_path: Path) -> str:
    try:
        bundle = json.loads(signature_path.read_text())
        return str(bundle["verificationMaterial"]["publicKey"]["hint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvenanceError(f"{signature_path.name}: not a model-signing bundle ({exc})") from None


def signed_files(signature_path: Path) -> dict[str, str]:
    """The files and sha256 a bundle's statement lists (read it only after its signature verified)."""
    payload = json.loads(base64.b64decode(json.loads(signature_path.read_text())["dsseEnvelope"]["payload"]))
    return {r["name"]: r["digest"] for r in payload["predicate"]["resources"]}


def leaves_out_attestations(signature_path: Path) -> bool:
    """Whether a bundle's manifest leaves the attestations folder out (bundles made before that folder existed list
    only model.sig among their ignored paths, so model_signing would see a later attestation as an extra file)."""
    payload = json.loads(base64.b64decode(json.loads(signature_path.read_text())["dsseEnvelope"]["payload"]))
    return ATTESTATIONS_DIR in payload["predicate"].get("serialization", {}).get("ignore_paths", [])


def _key_for(signature_path: Path, keys: Iterable[PublicKey], label: str) -> PublicKey:
    wanted = bundle_key_id(signature_path)
    key = next((k for k in keys if k.key_id == wanted), None)
    if key is None:
        raise ProvenanceError(f"{label}: signed by key {wanted[:16]}…, which is not one of the keys given "
                              "(the hub's keys, or --key)")
    if key.status == "revoked":
        raise ProvenanceError(f"{label}: signed by key {wanted[:16]}…, which the hub has revoked")
    return key


def verify_folder(folder: Path, keys: Iterable[PublicKey], *, label: str = "") -> Verified:
    """Check `folder` as model_signing's verifier does (every file's sha256 against the signed list, no file
    missing or extra, the signature by one of `keys`), then its attestations and the bundles a stack carries.
    Raises ProvenanceError naming the file at the first problem."""
    import model_signing

    keys = list(keys)
    label = label or folder.name
    # As signed; bundles signed before the attestations folder existed did not list it among their ignored paths.
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=list(IGNORED))
    signature = folder / SIGNATURE_FILE
    if not signature.is_file():
        raise ProvenanceError(f"{label}: no {SIGNATURE_FILE} in {folder}")
    key = _key_for(signature, keys, f"{label}/{SIGNATURE_FILE}")
    with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
        pem.write(key.pem)
        pem.flush()
        try:
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pem.name).set_hashing_config(
                hashing).verify(folder, signature)
        except ValueError as exc:
            if str(exc).startswith("Signature mismatch"):  # the signature held: the files differ from its list
                raise ProvenanceError(f"{label}: {_files_differ(folder, signed_files(signature))}") from None
            raise ProvenanceError(f"{label}: {_verification_message(exc)}") from None
        except Exception as exc:  # cryptography's InvalidSignature, …
            raise ProvenanceError(f"{label}: {_verification_message(exc)}") from None
    result = Verified(folder=folder, key=key, files=signed_files(signature))
    attestations = folder / ATTESTATIONS_FILE
    if attestations.is_file():
        _add(result, verify_attestations(attestations, keys, result.files, label=label))
    for path in attestation_files(folder):
        _add(result, verify_attestations(path, keys, result.files, label=label,
                                         shown=path.relative_to(folder).as_posix()))
    result.upstream = _verify_upstream(folder, keys, result)
    return result


def attestation_files(folder: Path) -> list[Path]:
    """The later attestations of a folder (its attestations/ files), in order."""
    later = folder / ATTESTATIONS_DIR
    return sorted(p for p in later.rglob("*") if p.is_file()) if later.is_dir() else []


def _add(result: Verified, signed: list[tuple[dict[str, Any], PublicKey]]) -> None:
    result.statements += [item for item, _ in signed]
    result.signers += [key for _, key in signed]


def envelope_key_ids(path: Path) -> list[str]:
    """The key ids an attestation bundle's envelopes name, unverified (to know which keys to fetch)."""
    try:
        return [s.get("keyid", "") for line in path.read_text().splitlines() if line
                for s in json.loads(line).get("signatures", [])]
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return []


def _verification_message(exc: Exception) -> str:
    if type(exc).__name__ == "InvalidSignature":
        return f"the signature in {SIGNATURE_FILE} does not match its contents (it was altered)"
    return str(exc) or type(exc).__name__


def _files_differ(folder: Path, signed: Mapping[str, str]) -> str:
    """Which files differ from the signed list, and how (model_signing's own message prints raw digests)."""
    present = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
               if p.is_file() and p.relative_to(folder).parts[0] not in IGNORED
               and not p.relative_to(folder).parts[0].startswith(".git")}
    problems = [f"{name} is missing (signed with sha256 {digest})" for name, digest in sorted(signed.items())
                if name not in present]
    problems += [f"{name} is not in the signed files" for name in present if name not in signed]
    for name, path in present.items():
        if name in signed and (actual := _sha256(path)) != signed[name]:
            problems.append(f"{name} was changed (sha256 {actual}, signed {signed[name]})")
    return "; ".join(problems) or "the files do not match the signed list"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_attestations(path: Path, keys: Iterable[PublicKey], files: Mapping[str, str], *,
                        label: str, shown: str = "") -> list[tuple[dict[str, Any], PublicKey]]:
    """Each envelope signed by a known, unrevoked key; each statement's subjects among the signed files. Returns each
    statement with the key that signed it. `shown` is the file as messages name it (its path in the folder; default
    its file name)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    usable = {k.key_id: k for k in keys if k.status != "revoked"}
    statements = []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ProvenanceError(f"{label}/{shown or path.name}: not an attestation bundle ({exc})") from None
    if not lines:
        raise ProvenanceError(f"{label}/{shown or path.name}: empty; expected one signed DSSE envelope per line")
    for number, line in enumerate(lines, start=1):
        where = f"{label}/{shown or path.name} line {number}"
        try:
            envelope = Envelope.from_dict(json.loads(line))
            accepted = envelope.verify([_sslib_key(k.pem) for k in usable.values()], 1)
            item = json.loads(envelope.payload)
        except VerificationError:
            raise ProvenanceError(f"{where}: not signed by any of the keys given") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ProvenanceError(f"{where}: not a DSSE envelope ({exc})") from None
        for subject in item.get("subject", []):
            name, digest = subject.get("name"), subject.get("digest", {}).get("sha256")
            if files.get(name) != digest:
                raise ProvenanceError(f"{where}: names {name} with sha256 {digest}, but the signed files list "
                                      f"{files.get(name, 'no such file')}")
        statements.append((item, usable[next(iter(accepted))]))
    return statements


def _verify_upstream(folder: Path, keys: list[PublicKey], stack: Verified) -> list[Verified]:
    """A stack's build attestation names each adapter's model.sig by sha256; the stack carries those bundles under
    provenance/<owner>/<name>/v<N>/, and each must verify and hold the adapter weights the recipe used."""
    upstream = []
    for item in stack.statements:
        if item.get("predicateType") != STACK_BUILD:
            continue
        for adapter in item["predicate"].get("adapters", []):
            ref, bundle = adapter["ref"], adapter.get("bundle") or {}
            here = folder / bundle.get("path", "")
            signature = here / SIGNATURE_FILE
            expected = bundle.get("model.sig")
            if not signature.is_file():
                raise ProvenanceError(f"{stack.folder.name}: the bundle of adapter {ref} is missing "
                                      f"({bundle.get('path')}/{SIGNATURE_FILE})")
            if hashlib.sha256(signature.read_bytes()).hexdigest() != expected:
                raise ProvenanceError(f"{bundle.get('path')}/{SIGNATURE_FILE}: not the bundle the build attestation "
                                      f"names for {ref} (sha256 {expected})")
            verified = _verify_signature_only(here, keys, label=ref)
            if verified.files.get(adapter["weights_path"]) != adapter["weights_sha256"]:
                raise ProvenanceError(f"{ref}: its signed files do not list {adapter['weights_path']} with the "
                                      f"sha256 the stack was built from ({adapter['weights_sha256']})")
            upstream.append(verified)
    return upstream


def _verify_signature_only(folder: Path, keys: list[PublicKey], *, label: str) -> Verified:
    """An adapter's bundle without its files: the signature over the statement, and its attestations.

    model_signing's public API verifies a bundle only together with the files; this uses its own bundle reader and
    key verifier (private modules, pinned by model-signing<2) rather than re-implementing them."""
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    signature = folder / SIGNATURE_FILE
    key = _key_for(signature, keys, f"{label}/{SIGNATURE_FILE}")
    with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
        pem.write(key.pem)
        pem.flush()
        try:
            sign_ec_key.Verifier(Path(pem.name)).verify(sign_sigstore_pb.Signature.read(signature))
        except Exception as exc:
            raise ProvenanceError(f"{label}: {_verification_message(exc)}") from None
    result = Verified(folder=folder, key=key, files=signed_files(signature))
    attestations = folder / ATTESTATIONS_FILE
    if attestations.is_file():
        # The adapter's attestation file is one of its signed files: check it is that one, then its envelopes.
        digest = hashlib.sha256(attestations.read_bytes()).hexdigest()
        if result.files.get(ATTESTATIONS_FILE) != digest:
            raise ProvenanceError(f"{label}/{ATTESTATIONS_FILE}: sha256 {digest} is not the one its {SIGNATURE_FILE} "
                                  "lists")
        _add(result, verify_attestations(attestations, keys, result.files, label=label))
    return result

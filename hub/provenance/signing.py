"""Signing what the hub serves: each validated version and each built stack gets `model.sig` and
`provenance.intoto.jsonl` (see workers/engine/signing.py) as two more of its files, so every download path (the
API, the pages, the Hugging Face routes) lists and serves them like the rest. What is attested about a version later
(its evaluations) is a bundle of its own beside them, `attestations/<name>.intoto.jsonl` (`version_attest`): the
hub owns that folder, so whatever a version was given there is dropped when it is signed.

The files are laid out in a scratch folder from the blob store (hard links when it is local), attested, and signed
with model_signing over exactly that folder, so the signature is checked against the stored bytes themselves.

A version mirrored from another hub is not signed again: federation checks the origin's model.sig when it fetches
the files and keeps it (`origin_signature_keep`); once this hub has validated the files again, the version serves
the origin's signed files byte for byte plus this hub's own attestation of what it checked,
`attestations/mirror-<host>-….intoto.jsonl` (`version_countersign`), so a copy relayed through several hubs still
verifies with `model_signing verify` against its origin's key.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hub.catalog.models import Blob, Version, VersionFile, VersionState
from hub.catalog.services import blob_put_file
from hub.catalog.validation import HUB_MADE_FILES, is_hub_made
from hub.catalog.workdir import materialize, scratch_dir
from hub.provenance.keys import signing_key
from hub.provenance.models import OriginSignature
from hub.provenance.swarm import swarm_for
from hub.stacks.models import BuildState, StackBuild, StackFile
from workers.engine import ENGINE_VERSION
from workers.engine.signing import (
    ATTESTATIONS_DIR,
    ATTESTATIONS_FILE,
    MIRROR,
    QUANTIZATION,
    SIGNATURE_FILE,
    STACK_BUILD,
    UPSTREAM_DIR,
    VALIDATION,
    VERIFICATION,
    ProvenanceError,
    PublicKey,
    Verified,
    attestation_path,
    attestation_statements,
    bundle_key_id,
    is_later_attestation,
    leaves_out_attestations,
    sign_attestations,
    sign_folder,
    signed_files,
    statement,
    verify_attestations,
    verify_folder,
)

SIGNED_FILES = (SIGNATURE_FILE, ATTESTATIONS_FILE)


def builder() -> dict[str, str]:
    """Who did the work, as the attestations name it."""
    return {"id": settings.SITE_URL or settings.NOMOAT_PUBLIC_URL.rstrip("/"), "engine_version": ENGINE_VERSION}


def _sign(name: str, files: Mapping[str, str], statements: list[dict[str, Any]], *,
          extra: Mapping[str, str] = ()) -> dict[str, Blob]:
    """Lay out `files` {path: sha256} (and `extra` ones, e.g. the adapters' bundles) as folder `name`, write the
    attestation bundle and model.sig into it, and store those two as blobs."""
    scratch = scratch_dir("sign", name)
    folder = scratch / name
    try:
        materialize({**files, **dict(extra)}.items(), folder)
        key = signing_key()
        (folder / ATTESTATIONS_FILE).write_bytes(sign_attestations(statements, key))
        sign_folder(folder, key)
        return {path: blob_put_file(path=folder / path) for path in SIGNED_FILES}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _digests(files: Mapping[str, Blob]) -> dict[str, str]:
    return {path: blob.sha256 for path, blob in files.items()
            if path not in SIGNED_FILES and not is_later_attestation(path)}


def version_sign(*, version: Version) -> dict[str, Blob]:
    """Sign a version that passed validation; its file list gains model.sig and provenance.intoto.jsonl.

    Runs inside the transaction that records the validation, so nobody sees the version unsigned."""
    stored = {f.path: f.blob for f in version.files.select_related("blob")}
    files = _digests(stored)
    repo = version.repository
    uploaded = {p: s for p, s in files.items() if p not in HUB_MADE_FILES}
    attestation = statement(files, VALIDATION, {
        "builder": builder(),
        "repository": repo.full_name, "kind": repo.kind, "version": version.number,
        "uploaded_by": version.created_by.username,
        "inputs": [{"name": p, "digest": {"sha256": s}} for p, s in sorted(uploaded.items())],
        "report": version.validation_report,
        "validated_at": timezone.now().isoformat(),
    })
    signed = _sign(f"{repo.owner.username}--{repo.name}--v{version.number}", files, [attestation])
    VersionFile.objects.filter(version=version, path__in=SIGNED_FILES).delete()
    VersionFile.objects.filter(version=version, path__startswith=f"{ATTESTATIONS_DIR}/").delete()
    VersionFile.objects.bulk_create([VersionFile(version=version, path=p, blob=b) for p, b in signed.items()])
    _make_swarms({**stored, **signed})
    _recommit(version)
    return signed


def _recommit(version: Version) -> None:
    """The version's commit id (what the Hugging Face routes name it by) from the files it holds now: a commit is
    its file list, so one more file (model.sig, a later attestation) is a new commit id."""
    every = list(version.files.values_list("path", "blob_id"))
    Version.objects.filter(pk=version.pk).update(
        commit_sha=Version.make_commit_sha(version.repository_id, version.number, every))


# --- versions mirrored from another hub --------------------------------------------------------------------------------


def stored_verify(*, name: str, files: Mapping[str, str], keys: list[PublicKey]) -> Verified:
    """Lay out stored blobs {path: sha256} as folder `name` and verify it (model.sig and every attestation) with
    `keys`, exactly as a client that pulled those files would. Raises ProvenanceError naming what is wrong."""
    scratch = scratch_dir("verify", name)
    try:
        materialize(files.items(), scratch / name)
        return verify_folder(scratch / name, keys)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def relayed_verify(*, path: str, blob: Blob, keys: list[PublicKey], signed: Mapping[str, str]) -> PublicKey:
    """A relaying hub's mirror attestation: signed by one of `keys`, about the files `signed` (the origin's list);
    the key that signed it. Raises ProvenanceError."""
    (item, key), *_ = verify_attestations(_local_path(blob), keys, signed, label="relayed", shown=path)
    if item.get("predicateType") != MIRROR:
        raise ProvenanceError(f"{path}: a {item.get('predicateType')} statement; expected a mirror attestation")
    return key


def origin_signature_keep(*, version: Version, hub: str, files: Mapping[str, Blob],
                          keys: Mapping[str, PublicKey]) -> OriginSignature:
    """Record the origin's signed files (and relayed attestations) of a mirrored version, verified by the caller;
    `keys` {path: the key that signed it}. They replace what validation here makes once the version passes it."""
    return OriginSignature.objects.create(
        version=version, hub=hub, files={p: b.sha256 for p, b in files.items()},
        keys=[{"path": p, "hub": k.hub, "key_id": k.key_id, "pem": k.pem.decode()} for p, k in sorted(keys.items())])


def version_countersign(*, version: Version, kept: OriginSignature) -> Blob | None:
    """A mirrored version that passed validation here: its files become exactly what the origin's model.sig signs
    (the uploader's files and the origin's GGUF LoRA, whatever this hub's validation made instead) plus the kept
    bundles, and this hub attests, with its own key, that it verified them and validated the files again."""
    stored = {f.path: f.blob for f in version.files.select_related("blob")}
    blobs = {p: Blob.objects.get(sha256=sha) for p, sha in kept.files.items()}
    signed = signed_files(_local_path(blobs[SIGNATURE_FILE]))
    made_here = {p: b.sha256 for p, b in stored.items() if p not in signed and p not in kept.files}
    rebuilt = {p: {"sha256": b.sha256, "same_as_origin": b.sha256 == signed.get(p)} for p, b in stored.items()
               if p in signed and is_hub_made(p)} | {p: {"sha256": s, "same_as_origin": False}
                                                     for p, s in made_here.items()}
    served = {p: b for p, b in stored.items() if p in signed and not is_hub_made(p)} | blobs
    VersionFile.objects.filter(version=version).exclude(path__in=list(served)).delete()
    for path, blob in served.items():
        if stored.get(path) != blob:
            VersionFile.objects.update_or_create(version=version, path=path, defaults={"blob": blob})
    origin = getattr(version, "origin", None)
    own = settings.NOMOAT_PUBLIC_URL.rstrip("/")
    made = _attested(served, f"version-{version.pk}", f"mirror-{urlsplit(own).netloc}", MIRROR, {
        "hub": own,
        "origin": {"hub": kept.hub, "object": origin.object_id if origin else None,
                   "version": origin.number if origin else None, "key_id": bundle_key_id(_local_path(blobs[SIGNATURE_FILE]))},
        "received_from": origin.peer_url if origin else None,
        "mirrored_as": f"{version.repository.full_name}@{version.number}",
        "kept": [{"name": k["path"], "digest": {"sha256": kept.files[k["path"]]}, "signed_by": {
            "hub": k["hub"], "key_id": k["key_id"]}} for k in kept.keys],
        "validation": {"ok": True, "checks": [c.get("name") for c in (version.validation_report or {}).get(
            "checks", []) if c.get("passed")]},
        "rebuilt": rebuilt,
        "validated_at": timezone.now().isoformat(),
    })
    if made is not None:
        VersionFile.objects.update_or_create(version=version, path=made[0], defaults={"blob": made[1]})
    _make_swarms(served)
    _recommit(version)
    return None if made is None else made[1]


def version_attest(*, version: Version, name: str, predicate_type: str, predicate: Mapping[str, Any]) -> Blob | None:
    """Attest something about a signed version after the fact (e.g. an evaluation): one signed statement naming the
    files model.sig lists, stored as `attestations/<name>.intoto.jsonl` among the version's files. The same statement
    again changes nothing; a new one for the same name replaces it. None when the version is not signed (there is no
    model.sig for the statement to extend)."""
    stored = {f.path: f.blob for f in version.files.select_related("blob")}
    if SIGNATURE_FILE in stored and not leaves_out_attestations(_local_path(stored[SIGNATURE_FILE])):
        if OriginSignature.objects.filter(version=version).exists():
            return None  # another hub's old bundle: an attestation beside it would fail model_signing's check
        stored[SIGNATURE_FILE] = _sign_again(version, stored)
    made = _attested(stored, f"version-{version.pk}", name, predicate_type, predicate)
    if made is not None and stored.get(made[0]) != made[1]:
        VersionFile.objects.update_or_create(version=version, path=made[0], defaults={"blob": made[1]})
        _recommit(version)
    return None if made is None else made[1]


def _local_path(blob: Blob) -> Path:
    """A stored blob as a local file (the engine's readers take paths)."""
    from hub.catalog.blobstore import get_blob_store

    return get_blob_store().local_path(blob.sha256)


def _sign_again(version: Version, stored: Mapping[str, Blob]) -> Blob:
    """A model.sig made before it left the attestations folder out, made again over the same files (with the
    attestations already there: they name those files, which have not changed), so the folder verifies."""
    files = {p: b.sha256 for p, b in stored.items() if p != SIGNATURE_FILE and not is_later_attestation(p)}
    scratch = scratch_dir("resign", str(version.pk))
    try:
        materialize(files.items(), scratch / "v")
        blob = blob_put_file(path=sign_folder(scratch / "v", signing_key()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    VersionFile.objects.filter(version=version, path=SIGNATURE_FILE).update(blob=blob)
    _make_swarms({SIGNATURE_FILE: blob})
    _recommit(version)
    return blob


def stack_attest(*, build: StackBuild, name: str, predicate_type: str, predicate: Mapping[str, Any]) -> Blob | None:
    """`version_attest` for a built stack: the statement names the stack's signed files."""
    stored = {f.path: f.blob for f in build.files.select_related("blob")}
    made = _attested(stored, f"stack-{build.pk}", name, predicate_type, predicate)
    if made is not None and stored.get(made[0]) != made[1]:
        StackFile.objects.update_or_create(build=build, path=made[0], defaults={"blob": made[1]})
    return None if made is None else made[1]


def _attested(stored: Mapping[str, Blob], owner: str, name: str, predicate_type: str,
              predicate: Mapping[str, Any]) -> tuple[str, Blob] | None:
    """(path, bundle) of the attestation `name` about the signed files `stored`: the stored one when it says the same,
    else a new bundle, written and stored as a blob before the caller's row points at it (a reader sees the old
    bundle or the new one, never a part of one). None without model.sig."""
    if SIGNATURE_FILE not in stored:
        return None
    path = attestation_path(name)
    item = statement(_digests(stored), predicate_type, {
        "builder": builder(), "signature": {"name": SIGNATURE_FILE, "digest": {"sha256": stored[SIGNATURE_FILE].sha256}},
        **predicate})
    if path in stored and attestation_statements(_blob_bytes(stored[path])) == [item]:
        return path, stored[path]
    scratch = scratch_dir("attest", owner, path.rsplit("/", 1)[-1])  # attestations of other names are made beside
    try:
        bundle = scratch / "bundle.intoto.jsonl"
        bundle.write_bytes(sign_attestations([item], signing_key()))
        blob = blob_put_file(path=bundle)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _make_swarms({path: blob})
    return path, blob


def _blob_bytes(blob: Blob) -> bytes:
    from hub.catalog.blobstore import open_blob

    with open_blob(blob.sha256) as stream:
        return stream.read()


def upstream_path(version: Version) -> str:
    """Where a stack carries an adapter version's bundle."""
    repo = version.repository
    return f"{UPSTREAM_DIR}/{repo.owner.username}/{repo.name}/v{version.number}"


def stack_sign(*, build: StackBuild, files: Mapping[str, Blob]) -> dict[str, Blob]:
    """model.sig and the attestations of a built stack, plus the adapters' bundles it carries; all to be stored
    among the stack's files."""
    manifest = _manifest(files)
    outputs = _digests(files)
    extra: dict[str, str] = {}
    adapters = []
    for member in build.members.select_related("version__repository__owner").order_by("position"):
        version = member.version
        theirs = {f.path: f.blob.sha256 for f in version.files.select_related("blob")}
        entry: dict[str, Any] = {"ref": f"{version.repository.full_name}@{version.number}", "weight": member.weight,
                                 "weights_path": "adapter_model.safetensors",
                                 "weights_sha256": theirs.get("adapter_model.safetensors"),
                                 "uploaded_by": version.created_by.username, "bundle": None}
        if SIGNATURE_FILE in theirs:
            where = upstream_path(version)
            for path in SIGNED_FILES:
                if path in theirs:
                    extra[f"{where}/{path}"] = theirs[path]
            entry["bundle"] = {"path": where, SIGNATURE_FILE: theirs[SIGNATURE_FILE]}
        adapters.append(entry)
    base = {f.path: f.blob.sha256 for f in build.base_model.files.select_related("blob")}
    report = manifest.get("report") or {}
    statements = [statement(outputs, STACK_BUILD, {
        "builder": builder(), "recipe_hash": build.recipe_hash, "recipe": build.recipe,
        "method": build.method, "output": build.output,
        "base_model": {"name": build.base_model.name, "files": base},
        "adapters": adapters, "built_at": timezone.now().isoformat(),
    })]
    if report.get("quantize"):
        statements.append(statement(outputs, QUANTIZATION, {
            "builder": builder(), "llama_cpp_python": _version_of("llama-cpp-python"),
            # The figures, without the worker's local path.
            "quantize": {k: v for k, v in report["quantize"].items() if k != "path"},
        }))
    gates = {name: value for name, value in report.items() if name.endswith("_gate")}
    if gates:
        statements.append(statement(outputs, VERIFICATION, {"builder": builder(), "gates": gates}))
    signed = _sign(f"stack-{build.recipe_hash[:16]}", outputs, statements, extra=extra)
    blobs = {path: Blob.objects.get(sha256=sha) for path, sha in extra.items()}
    _make_swarms({**files, **signed})
    return {**blobs, **signed}


def _make_swarms(files: Mapping[str, Blob]) -> None:
    """Torrents and piece hashes made here, in the worker, so listing the files can show magnets at once."""
    for path, blob in files.items():
        swarm_for(blob, path.rsplit("/", 1)[-1])


def _manifest(files: Mapping[str, Blob]) -> dict[str, Any]:
    import json

    from hub.catalog.blobstore import get_blob_store
    from workers.engine.build import MANIFEST_NAME

    blob = files.get(MANIFEST_NAME)
    return json.loads(get_blob_store().local_path(blob.sha256).read_bytes()) if blob else {}


def _version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None



@transaction.atomic
def stack_add_signature(*, build: StackBuild) -> dict[str, Blob]:
    """Sign a stack built before the hub signed stacks (its file list gains the signed files)."""
    files = {f.path: f.blob for f in build.files.select_related("blob") if f.path not in SIGNED_FILES}
    signed = stack_sign(build=build, files=files)
    StackFile.objects.filter(build=build, path__in=list(signed)).delete()
    StackFile.objects.bulk_create([StackFile(build=build, path=p, blob=b) for p, b in signed.items()])
    return signed


def unsigned() -> tuple[list[Version], list[StackBuild]]:
    """Published versions and ready stacks without model.sig (made before the hub signed them)."""
    return (list(Version.objects.filter(state=VersionState.PUBLISHED).exclude(files__path=SIGNATURE_FILE)
                 .select_related("repository__owner", "created_by")),
            list(StackBuild.objects.filter(state=BuildState.READY).exclude(files__path=SIGNATURE_FILE)
                 .select_related("base_model")))

"""Where an upload is validated: the stored files of a version, unpacked into a scratch folder and
checked by the engine (`workers.engine.validation`), plus the GGUF LoRA every valid adapter gets."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from hub.catalog.models import BaseModel, Blob, RepoKind, Version
from hub.catalog.services import blob_put_file
from hub.catalog.workdir import materialize, materialize_base, scratch_dir, version_files
from workers.engine.archive import ArchiveLimits, extract_upload, is_archive
from workers.engine.checks import Check, ValidationReport
from workers.engine.errors import EngineInputError
from workers.engine.gguf_adapter import export_gguf_lora
from workers.engine.signing import ATTESTATIONS_FILE, SIGNATURE_FILE, is_later_attestation
from workers.engine.validation import validate_upload

ADAPTER_GGUF = "adapter_model.gguf"
# Files the hub adds to a version after validation (the GGUF LoRA, then the signature and attestations): never part
# of what the uploader sent, so a commit building on a version and an attestation of the upload leave them out.
HUB_MADE_FILES = frozenset({ADAPTER_GGUF, SIGNATURE_FILE, ATTESTATIONS_FILE})


def is_hub_made(path: str) -> bool:
    """A file the hub wrote into a version (GGUF, signature, attestations), not one its uploader sent."""
    return path in HUB_MADE_FILES or is_later_attestation(path)


def upload_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_files=settings.MAX_UPLOAD_FILES,
        max_total_bytes=settings.MAX_UNPACKED_BYTES,
        max_ratio=settings.MAX_COMPRESSION_RATIO,
        max_file_bytes=settings.MAX_UNPACKED_BYTES,
    )


def validate_version_files(version: Version) -> tuple[ValidationReport, dict[str, Blob] | None]:
    """The validation report, and the files the version should hold instead of its upload (None: keep them).

    Works in a scratch folder named by the version, cleared before this returns, so nothing outlives the task.
    """
    scratch = scratch_dir("validate", str(version.pk))
    try:
        return _check_upload(version, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_upload(version: Version, scratch: Path) -> tuple[ValidationReport, dict[str, Blob] | None]:
    base_models = {b.name: b.module_shapes for b in BaseModel.objects.all()}
    source = scratch / "raw"
    paths = materialize(version_files(version), source)
    packed = len(paths) == 1 and is_archive(paths[0])
    if packed:
        source = scratch / "upload"
        try:
            extract_upload(paths[0], source, limits=upload_limits())
        except EngineInputError as exc:
            return ValidationReport(version.repository.kind,
                                    [Check("archive", False, str(exc), file=exc.file, field=exc.field)]), None
    report = validate_upload(source, version.repository.kind, base_models,
                             chosen_base=version.base_model.name if version.base_model else None,
                             limits=upload_limits(), work_dir=scratch)
    # An archive's version holds the files it unpacked to, so clients download plain files.
    files = {str(p.relative_to(source)): blob_put_file(path=p) for p in sorted(source.rglob("*"))
             if p.is_file()} if packed and report.ok else None
    if report.ok and version.repository.kind == RepoKind.ADAPTER:
        gguf = adapter_gguf(source, report, scratch)
        if gguf is not None:
            stored = files if files is not None else {f.path: f.blob for f in version.files.select_related("blob")}
            files = {**stored, ADAPTER_GGUF: blob_put_file(path=gguf)}
    return report, files


def adapter_gguf(adapter_dir: Path, report: ValidationReport, tmp: Path) -> Path | None:
    """The adapter as a GGUF LoRA llama.cpp loads at run time; a conversion problem is reported, never fatal."""
    base = BaseModel.objects.filter(name=report.stats.get("base_model") or "").first()
    if base is None:
        return None
    base_dir = materialize_base(base)
    target = tmp / ADAPTER_GGUF
    try:
        info = export_gguf_lora(adapter_dir, base_dir, target)
    except EngineInputError as exc:
        report.checks.append(Check("gguf.adapter", False, f"skipped: no llama.cpp adapter could be written: {exc}",
                                   skipped=True))
        return None
    report.checks.append(Check("gguf.adapter", True, f"{ADAPTER_GGUF} written for llama.cpp (alpha "
                                                     f"{info['alpha']:g}, {info['size_bytes']} bytes)", file=ADAPTER_GGUF))
    return target


def crash_report(version: Version, exc: BaseException) -> ValidationReport:
    """What the uploader sees when validation itself failed (a bug of ours, not bad input)."""
    return ValidationReport(version.repository.kind, [Check(
        "internal", False, f"the hub could not finish validating this upload ({type(exc).__name__}); "
                           "please upload it again later")])

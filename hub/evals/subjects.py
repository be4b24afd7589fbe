"""What a run evaluates, named by content: the hash results are cached by, and the files a worker loads.

A subject is a base model (its HF folder, or one of its GGUF files), an adapter version merged into
its base, or a stack artifact (a merged HF folder, a single combined adapter on the base, or one of
its GGUF files). Its hash is computed from blob sha256s alone, so two names for the same bytes
share one result, and a changed byte anywhere is a new subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub.catalog.models import BaseModel, Version, VersionFile
from hub.evals.models import EvalRun, Runtime, SubjectKind
from hub.stacks.models import StackBuild
from workers.engine.outputs import RUNTIME_MANIFEST
from workers.engine.signing import is_later_attestation

# (path, sha256) pairs: the files of one folder the worker materializes.
Files = tuple[tuple[str, str], ...]

# What PEFT reads from an adapter folder; the card and anything else do not change the model.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def content_digest(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 over sorted name=sha256 pairs: equal for equal contents, whatever the order given."""
    digest = hashlib.sha256()
    for name, sha256 in sorted(entries):
        digest.update(f"{name}={sha256};".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Subject:
    kind: str  # SubjectKind
    runtime: str  # Runtime
    base_model: BaseModel
    hash: str
    hashes: dict[str, Any]  # every input's sha256, stored with the result
    size: int  # bytes of what is downloaded to run it (weights, adapter, or GGUF file)
    full_model: bool  # size holds every weight (so bits per weight mean something)
    version: Version | None = None
    build: StackBuild | None = None
    artifact_path: str = ""  # the GGUF file, for runtime gguf
    model_files: Files = ()  # the HF folder to load (runtime transformers)
    adapter_files: tuple[Files, ...] = ()  # PEFT folders merged into it, each at weight 1
    gguf_file: tuple[str, str] | None = None

    @property
    def bits_per_weight(self) -> float | None:
        if not self.full_model or not self.base_model.parameter_count:
            return None
        return self.size * 8 / self.base_model.parameter_count


def _files(rows: Iterable[Any]) -> list[tuple[str, str, int]]:
    """(path, sha256, size) of the files; the attestations added after signing (evaluations) are not the subject's:
    its hash stays what it was when its runs were scheduled."""
    return [(row.path, row.blob.sha256, row.blob.size) for row in rows if not is_later_attestation(row.path)]


def _weights_size(files: Iterable[tuple[str, str, int]]) -> int:
    return sum(size for path, _, size in files if path.endswith(".safetensors"))


def _gguf_subject(kind: str, base: BaseModel, path: str, sha256: str, size: int, hashes: dict[str, Any],
                  **owner: Any) -> Subject:
    return Subject(kind=kind, runtime=Runtime.GGUF, base_model=base, hash=sha256,
                   hashes={**hashes, "artifact": {path: sha256}}, size=size, full_model=True, artifact_path=path,
                   gguf_file=(path, sha256), **owner)


def base_subjects(base: BaseModel) -> list[Subject]:
    """The base model's HF folder first, then each of its GGUF files."""
    files = _files(base.files.all())
    hf = tuple((path, sha256) for path, sha256, _ in files if not path.endswith(".gguf"))
    hashes = {"base_model": base.name, "base": dict(hf)}
    subjects = [Subject(kind=SubjectKind.BASE, runtime=Runtime.TRANSFORMERS, base_model=base, hash=content_digest(hf),
                        hashes=hashes, size=_weights_size(files), full_model=True, model_files=hf)]
    subjects += [_gguf_subject(SubjectKind.BASE, base, path, sha256, size, {"base_model": base.name})
                 for path, sha256, size in files if path.endswith(".gguf")]
    return subjects


def _on_base(kind: str, base_hf: Subject, adapter: Files, size: int, hashes: dict[str, Any], **owner: Any) -> Subject:
    """An adapter merged into the base (`base_hf`: its HF folder's subject): hashed by the base's content and the
    adapter's."""
    return Subject(kind=kind, runtime=Runtime.TRANSFORMERS, base_model=base_hf.base_model,
                   hash=content_digest([("base", base_hf.hash), *adapter]),
                   hashes={**base_hf.hashes, **hashes}, size=size, full_model=False,
                   model_files=base_hf.model_files, adapter_files=(adapter,), **owner)


def adapter_subject(version: Version) -> Subject:
    return _adapter_subject_of_files(version, _files(version.files.all()), base_subjects(version.base_model)[0])


def adapter_subjects(versions: Iterable[Version]) -> dict[int, Subject]:
    """The subjects of many adapter versions, by version id, their files read in one query as plain rows (no file
    or blob instances: a leaderboard has one per adapter). The versions' base models must hold their files."""
    versions = list(versions)
    files: dict[int, list[tuple[str, str, int]]] = {version.pk: [] for version in versions}
    rows = (VersionFile.objects.filter(version_id__in=list(files), path__in=ADAPTER_FILES)
            .values_list("version_id", "path", "blob__sha256", "blob__size"))
    for version_id, path, sha256, size in rows:
        files[version_id].append((path, sha256, size))
    bases: dict[int, Subject] = {}  # each base model's HF subject, hashed once
    for version in versions:
        if version.base_model_id not in bases:
            bases[version.base_model_id] = base_subjects(version.base_model)[0]
    return {version.pk: _adapter_subject_of_files(version, files[version.pk], bases[version.base_model_id])
            for version in versions}


def _adapter_subject_of_files(version: Version, rows: Iterable[tuple[str, str, int]], base_hf: Subject) -> Subject:
    """`rows`: the version's (path, sha256, size) files, attestations added after signing left out."""
    files = sorted(f for f in rows if f[0] in ADAPTER_FILES)
    adapter = tuple((path, sha256) for path, sha256, _ in files)
    hashes = {"adapters": [{"ref": str(version), "weight": 1.0, "files": dict(adapter)}]}
    return _on_base(SubjectKind.ADAPTER, base_hf, adapter, _weights_size(files), hashes, version=version)


def stack_subjects(build: StackBuild) -> list[Subject]:
    """The artifact as transformers loads it (a merged folder, or one adapter on the base), then each GGUF model
    file (the gguf-* outputs). Recognised by content, so a new output kind of these shapes needs no change here.

    A `runtime` bundle (base GGUF + GGUF LoRAs that llama.cpp applies at run time) is not evaluated:
    the engine's GGUF backend loads no adapters, and the build's gate already proved the bundle predicts like
    the merged model.
    """
    base = build.base_model
    files = _files(build.files.all())
    hashes = {"stack": build.recipe_hash, "method": build.method, "output": build.output}
    paths = {path for path, _, _ in files}
    if RUNTIME_MANIFEST in paths:
        return []
    subjects = []
    if "adapter_config.json" in paths:
        adapter = [f for f in files if f[0] in ADAPTER_FILES]
        subjects.append(_on_base(SubjectKind.STACK, base_subjects(base)[0], tuple((p, s) for p, s, _ in adapter),
                                 _weights_size(adapter), {**hashes, "artifact": {p: s for p, s, _ in adapter}},
                                 build=build))
    elif "config.json" in paths:
        hf = tuple((path, sha256) for path, sha256, _ in files if not path.endswith(".gguf"))
        subjects.append(Subject(kind=SubjectKind.STACK, runtime=Runtime.TRANSFORMERS, base_model=base,
                                hash=content_digest(hf), hashes={**hashes, "artifact": dict(hf)},
                                size=_weights_size(files), full_model=True, build=build, model_files=hf))
    subjects += [_gguf_subject(SubjectKind.STACK, base, path, sha256, size, hashes, build=build)
                 for path, sha256, size in files if path.endswith(".gguf")]
    return subjects


def run_subject(run: EvalRun) -> Subject:
    """The subject a run was scheduled for, rebuilt from the database (what the worker loads)."""
    if run.subject_kind == SubjectKind.ADAPTER:
        return adapter_subject(run.version)
    candidates = base_subjects(run.base_model) if run.subject_kind == SubjectKind.BASE else stack_subjects(run.build)
    for subject in candidates:
        if subject.hash == run.subject_hash:
            return subject
    raise LookupError(f"{run.subject_label} no longer has the files this run was scheduled for")

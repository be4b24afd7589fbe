"""What the OCI registry serves: the GGUF files of a repository revision as an image manifest.

A name is a Hugging Face-compatible repository (`stacks/<hash>`, `<owner>/<name>`), resolved by hub.hfcompat's
resolvers, so who may see what is decided in one place; a tag is `latest` (the repository's `main`) or a revision
(`v3`). Layers are the revision's GGUF files, typed with Ollama's media types (a model; LoRA adapters), each titled
with its path as ORAS names pulled files; an adapter version's model layer is its base model's GGUF when the hub has
one. A template layer carries the base model's chat format as Ollama's own Go template when the format is a known one
(`hub.oci.chat_formats`; otherwise the manifest's annotations say why there is none), a system layer the card's
`system:` prompt, and a params layer the stop tokens: the template's, and the base tokenizer's end of turn. The config
is Ollama's (`model_format: gguf`, the layers' digests); it and the generated layers are stored in the blob store like
any file, so every digest a manifest names is served by the same blob route.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser

from hub.accounts.models import User
from hub.catalog.blobstore import get_blob_store
from hub.catalog.models import BaseModel, Blob, RepoKind, Repository
from hub.catalog.services import blob_put_stream
from hub.hfcompat.selectors import MAIN, HubFile, Revision, revision_resolve
from hub.oci.chat_formats import CHAT_FORMATS, ChatFormat, chat_format_of, default_chat_template
from hub.stacks.hf import STACKS_NAMESPACE
from hub.stacks.models import StackBuild

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"  # what Ollama's client asks for
OLLAMA_CONFIG = "application/vnd.docker.container.image.v1+json"
OLLAMA_MODEL = "application/vnd.ollama.image.model"
OLLAMA_ADAPTER = "application/vnd.ollama.image.adapter"
OLLAMA_PARAMS = "application/vnd.ollama.image.params"
OLLAMA_TEMPLATE = "application/vnd.ollama.image.template"
OLLAMA_SYSTEM = "application/vnd.ollama.image.system"
TEMPLATE_NOTE = "io.nomoat.ollama.template"  # the annotation saying why a manifest has no template layer
TITLE = "org.opencontainers.image.title"
LATEST = "latest"


class OciError(Exception):
    """An error of the distribution spec: a code from its list, a message naming what is missing, a status."""

    def __init__(self, code: str, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return f"sha256:{hashlib.sha256(self.body).hexdigest()}"


def _repo_parts(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 2 or not all(parts):
        raise OciError("NAME_INVALID", f"{name!r}: a name here is stacks/<hash> or <owner>/<name>", status=400)
    return parts[0], parts[1]


def _revision(user: User | AnonymousUser, name: str, tag: str) -> Revision:
    namespace, repo_name = _repo_parts(name)
    return revision_resolve(user=user, repo_type="model", namespace=namespace, name=repo_name,
                            revision=MAIN if tag == LATEST else tag)


def _base_model(revision: Revision) -> BaseModel | None:
    """The base model a stack was built on, or an adapter version was trained for."""
    namespace, name = revision.repo_id.split("/", 1)
    if namespace == STACKS_NAMESPACE:
        build = StackBuild.objects.filter(recipe_hash=name).select_related("base_model").first()
        return build.base_model if build else None
    repo = Repository.objects.filter(kind=RepoKind.ADAPTER, owner__username=namespace, name=name).select_related(
        "base_model").first()
    return repo.base_model if repo else None


def _base_gguf(base: BaseModel | None) -> HubFile | None:
    """The base model's GGUF: the model an adapter version's LoRA layer applies to."""
    file = base.files.filter(path__endswith=".gguf").select_related("blob").order_by("path").first() if base else None
    return HubFile(path=file.path, sha256=file.blob.sha256, size=file.blob.size) if file else None


def _base_text(base: BaseModel | None, path: str) -> str | None:
    file = base.files.filter(path=path).select_related("blob").first() if base else None
    return get_blob_store().local_path(file.blob.sha256).read_text(errors="replace") if file else None


def _tokenizer_config(base: BaseModel | None) -> dict:
    try:
        config = json.loads(_base_text(base, "tokenizer_config.json") or "{}")
    except ValueError:
        return {}  # not JSON: nothing to say
    return config if isinstance(config, dict) else {}


def _chat_template(base: BaseModel | None, tokenizer: dict) -> str:
    """The base's Jinja chat template: tokenizer_config.json's, or the chat_template.jinja that transformers writes."""
    return default_chat_template(tokenizer.get("chat_template")) or _base_text(base, "chat_template.jinja") or ""


def _params(tokenizer: dict, chat_format: ChatFormat | None) -> bytes | None:
    """Ollama's params layer: the stop tokens of the chat format, and the base tokenizer's end of turn (its eos)."""
    eos = tokenizer.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    stop = list(chat_format.stop) if chat_format else []
    stop += [eos] if isinstance(eos, str) and eos and eos not in stop else []
    return json.dumps({"stop": stop}, sort_keys=True, separators=(",", ":")).encode() if stop else None


def _prompt_layers(revision: Revision) -> tuple[list[dict], dict[str, str]]:
    """The template, system and params layers of a revision (descriptors of stored blobs), and the annotations that
    explain a missing template."""
    base = _base_model(revision)
    tokenizer = _tokenizer_config(base)
    chat_template = _chat_template(base, tokenizer)
    chat_format = chat_format_of(chat_template)
    layers, notes = [], {}
    if chat_format is not None:
        layers.append(_generated(OLLAMA_TEMPLATE, chat_format.template.encode(), "template"))
    else:
        notes[TEMPLATE_NOTE] = ("no template layer: the base model's chat template is not one of the known formats ("
                                + ", ".join(f.name for f in CHAT_FORMATS) + ")" if chat_template else
                                "no template layer: the base model has no chat template")
    system = (revision.card_data or {}).get("system")
    if isinstance(system, str) and system.strip():
        layers.append(_generated(OLLAMA_SYSTEM, system.encode(), "system"))
    params = _params(tokenizer, chat_format)
    if params is not None:
        layers.append(_generated(OLLAMA_PARAMS, params, "params.json"))
    return layers, notes


def _is_lora(path: str) -> bool:
    """A GGUF LoRA: a version's `adapter_model.gguf`, or a runtime bundle's `adapter-<i>-<ref>.gguf`."""
    return path == "adapter_model.gguf" or path.startswith("adapter-")


def layers_of(revision: Revision) -> list[tuple[str, HubFile]]:
    """(media type, file) of each GGUF layer: one model, and the LoRA adapters meant to be applied to it. Files a
    stack carries for provenance (its adapters' own bundles) are not layers."""
    ggufs = [f for f in revision.files if f.path.endswith(".gguf") and "/" not in f.path]
    models = [f for f in ggufs if not _is_lora(f.path)]
    adapters = [f for f in ggufs if _is_lora(f.path)]
    if not models and adapters:
        models = [m for m in [_base_gguf(_base_model(revision))] if m]
    return [(OLLAMA_MODEL, f) for f in models] + [(OLLAMA_ADAPTER, f) for f in adapters]


def _descriptor(media_type: str, sha256: str, size: int, title: str | None = None) -> dict:
    described = {"mediaType": media_type, "digest": f"sha256:{sha256}", "size": size}
    return described | ({"annotations": {TITLE: title}} if title else {})


def _stored(data: bytes) -> Blob:
    """A generated blob (the config, a template, params), content-addressed in the blob store like every file:
    storing it again is a no-op, so a manifest always names bytes the blob route can serve."""
    return blob_put_stream(stream=io.BytesIO(data))


def _generated(media_type: str, data: bytes, title: str) -> dict:
    blob = _stored(data)
    return _descriptor(media_type, blob.sha256, blob.size, title)


def manifest_for(revision: Revision, media_type: str) -> Manifest:
    layers = layers_of(revision)
    if not layers:
        raise OciError("MANIFEST_UNKNOWN", f"{revision.repo_id} at {revision.sha} has no GGUF file to pull")
    prompt_layers, notes = _prompt_layers(revision)
    described = [_descriptor(kind, f.sha256, f.size, f.path) for kind, f in layers] + prompt_layers
    config = json.dumps({
        "model_format": "gguf", "model_family": "llama", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in described]},
    }, sort_keys=True, separators=(",", ":")).encode()
    config_blob = _stored(config)
    manifest = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": _descriptor(OLLAMA_CONFIG, config_blob.sha256, config_blob.size),
        "layers": described,
        "annotations": {"org.opencontainers.image.revision": revision.sha,
                        "org.opencontainers.image.ref.name": revision.repo_id, **notes},
    }
    return Manifest(body=json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), media_type=media_type)


def tags_of(user: User | AnonymousUser, name: str) -> list[str]:
    latest = _revision(user, name, LATEST)
    return [LATEST, *(r.ref for r in latest.history if r.ref)]


def manifest_get(*, user: User | AnonymousUser, name: str, reference: str, accept: str) -> Manifest:
    """The manifest a tag or a digest names. Ollama asks for Docker's media type, others for OCI's; the layers are
    the same."""
    media_type = DOCKER_MANIFEST if DOCKER_MANIFEST in accept and OCI_MANIFEST not in accept else OCI_MANIFEST
    if not reference.startswith("sha256:"):
        return manifest_for(_revision(user, name, reference), media_type)
    for tag in tags_of(user, name):
        for kind in (OCI_MANIFEST, DOCKER_MANIFEST):
            try:
                manifest = manifest_for(_revision(user, name, tag), kind)
            except OciError:
                continue
            if manifest.digest == reference:
                return manifest
    raise OciError("MANIFEST_UNKNOWN", f"{name} has no manifest {reference}")


def blob_get(*, user: User | AnonymousUser, name: str, digest: str) -> tuple[Blob, str]:
    """A blob that one of `name`'s manifests names (a layer, or a config), with the file name to serve it as."""
    for tag in tags_of(user, name):
        revision = _revision(user, name, tag)
        try:
            manifest = json.loads(manifest_for(revision, OCI_MANIFEST).body)
        except OciError:
            continue
        for described in [manifest["config"], *manifest["layers"]]:
            if described["digest"] == digest:
                title = described.get("annotations", {}).get(TITLE, "config.json")
                return Blob.objects.get(sha256=digest.removeprefix("sha256:")), title.rsplit("/", 1)[-1]
    raise OciError("BLOB_UNKNOWN", f"{name} has no blob {digest}")

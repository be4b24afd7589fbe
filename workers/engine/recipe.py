"""Stack recipes: which base and adapters to combine, by which method, into which output.

A recipe is validated once (`Recipe.from_dict`, every error an EngineInputError naming the field),
then written in one canonical form: sorted keys, normalized numbers and every default filled in,
so two requests that mean the same build have the same `hash`. The hub uses that hash to hand out
an existing artifact instead of building again. Methods live in `methods`, outputs in `outputs`,
the LoRA rules in `lora`, and what a client sends (adapters by name, before the hub resolves them to
versions and hashes) in `recipe_schema`; this module imports none of torch, Django or the builders.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.engine import ENGINE_VERSION
from workers.engine.errors import EngineInputError, quote
from workers.engine.fields import mapping, parse_weight, reject_unknown
from workers.engine.methods import MethodSpec
from workers.engine.outputs import OutputSpec

MAX_ADAPTERS = 32
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")  # patterns here are used with fullmatch
ADAPTER_REF_RE = re.compile(r"(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95})@(?P<version>[0-9]{1,9})")
WEIGHT_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors")

@dataclass(frozen=True)
class BaseModelRef:
    """The base model: its hub name and the sha256 of each of its weight files."""

    name: str
    sha256: dict[str, str]


@dataclass(frozen=True)
class AdapterRef:
    """One adapter of the stack: hub ref ("owner/name@version"), content sha256, and weight."""

    ref: str
    sha256: str
    weight: float


@dataclass(frozen=True)
class Recipe:
    base: BaseModelRef
    adapters: tuple[AdapterRef, ...]
    method: MethodSpec
    output: OutputSpec

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Validate a recipe as sent by a client or stored by the hub; defaults are filled in."""
        data = mapping(data, "recipe")
        reject_unknown(data, ("base", "adapters", "method", "output"), "")
        for key in ("base", "adapters", "method", "output"):
            if key not in data:
                raise EngineInputError("is required", field=key, code="required")
        method = MethodSpec.parse(data["method"])
        return cls(
            base=_parse_base(data["base"]),
            adapters=_parse_adapters(data["adapters"]),
            method=method,
            output=OutputSpec.parse(data["output"], method),
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: what `from_dict` accepts, with every default present."""
        return {
            "base": {"name": self.base.name, "sha256": dict(sorted(self.base.sha256.items()))},
            "adapters": [{"ref": a.ref, "sha256": a.sha256, "weight": a.weight} for a in self.adapters],
            "method": {"name": self.method.name, "params": dict(self.method.params)},
            "output": {"type": self.output.type, **self.output.params},
        }

    def content_dict(self) -> dict[str, Any]:
        """The canonical form by content alone: adapters by sha256 and weight, without the hub refs that name them.
        A ref is one hub's label (a mirrored adapter has another on each hub), so the same stack built on two hubs
        has the same hash and the same files."""
        data = self.to_dict()
        data["adapters"] = [{"sha256": a.sha256, "weight": a.weight} for a in self.adapters]
        return data

    def canonical_json(self) -> str:
        return json.dumps(self.content_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON and the engine version: equal for equivalent recipes, on any hub."""
        return hashlib.sha256((self.canonical_json() + ENGINE_VERSION).encode()).hexdigest()


def _sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise EngineInputError("expected a sha256 as 64 hexadecimal characters", field=field, code="sha256")
    return value.lower()


def _parse_base(raw: Any) -> BaseModelRef:
    raw = mapping(raw, "base")
    reject_unknown(raw, ("name", "sha256"), "base")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise EngineInputError("expected the base model's hub name (1-200 characters)", field="base.name")
    hashes = mapping(raw.get("sha256"), "base.sha256")
    if not hashes:
        raise EngineInputError("expected {weight file name: sha256} for each weight file", field="base.sha256")
    for file in hashes:
        if not isinstance(file, str) or not WEIGHT_FILE_RE.fullmatch(file):
            raise EngineInputError(f"{quote(file)} is not a plain *.safetensors file name", field="base.sha256")
    return BaseModelRef(name=name.strip(), sha256={f: _sha256(h, f"base.sha256.{f}") for f, h in sorted(hashes.items())})


def _parse_adapters(raw: Any) -> tuple[AdapterRef, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise EngineInputError("expected a list of adapters", field="adapters", code="type")
    if not raw:
        raise EngineInputError("a stack needs at least one adapter", field="adapters", code="required")
    if len(raw) > MAX_ADAPTERS:
        raise EngineInputError(f"at most {MAX_ADAPTERS} adapters per stack, got {len(raw)}", field="adapters")
    adapters: list[AdapterRef] = []
    for index, item in enumerate(raw):
        field = f"adapters[{index}]"
        item = mapping(item, field)
        reject_unknown(item, ("ref", "sha256", "weight"), field)
        match = ADAPTER_REF_RE.fullmatch(item.get("ref") if isinstance(item.get("ref"), str) else "")
        if match is None:
            raise EngineInputError('expected "owner/name@version", e.g. "alice/sql-helper@2"', field=f"{field}.ref")
        weight = parse_weight(item.get("weight", 1.0), f"{field}.weight")
        adapter = AdapterRef(
            ref=f"{match['repo']}@{int(match['version'])}", sha256=_sha256(item.get("sha256"), f"{field}.sha256"), weight=weight
        )
        for other in adapters:
            if adapter.ref == other.ref or adapter.sha256 == other.sha256:
                same = "ref" if adapter.ref == other.ref else "sha256"
                raise EngineInputError(
                    f"duplicates {other.ref} (same {same}); give one entry a larger weight instead", field=field, code="duplicate"
                )
        adapters.append(adapter)
    return tuple(adapters)

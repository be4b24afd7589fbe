"""Model and dataset cards: a README.md whose YAML front matter carries the metadata the hub trusts.

Only the front matter is interpreted. It is loaded with PyYAML's safe loader (no Python objects)
that also refuses aliases, so a few bytes of `&a [*a, *a, ...]` cannot expand into gigabytes once
the metadata is copied into the database or a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workers.engine.errors import EngineInputError, quote

MAX_CARD_BYTES = 1024 * 1024
FENCE = "---"

# SPDX ids and the Hugging Face Hub's license ids (lower-case, as cards write them). "unknown" is
# deliberately absent: a card that does not know its license cannot be redistributed by the hub.
KNOWN_LICENSES: frozenset[str] = frozenset({
    "apache-2.0", "mit", "isc", "zlib", "unlicense", "wtfpl", "postgresql", "ncsa", "0bsd",
    "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "bsl-1.0", "afl-3.0", "artistic-2.0",
    "ecl-2.0", "epl-1.0", "epl-2.0", "eupl-1.1", "eupl-1.2", "mpl-2.0", "ms-pl", "osl-3.0", "ofl-1.1",
    "lppl-1.3c", "etalab-2.0",
    "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "lgpl-lr", "agpl-3.0", "gfdl",
    "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "odc-by", "odbl", "pddl", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "c-uda",
    "openrail", "openrail++", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma",
    "apple-ascl", "apple-amlr", "intel-research", "h-research", "deepfloyd-if-license",
    "fair-noncommercial-research-license",
    "other",
})


@dataclass(frozen=True)
class Card:
    front_matter: dict[str, Any]
    body: str


class _StrictSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects aliases (the "billion laughs" expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def parse_card(text: str, *, file: str = "README.md") -> Card:
    """Split a card into its YAML front matter (between `---` lines at the top) and its Markdown body."""
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        return Card(front_matter={}, body=text)
    closing = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == FENCE), None)
    if closing is None:
        raise EngineInputError(
            f"opened with '{FENCE}' on line 1 but never closed by a '{FENCE}' line",
            file=file, field="front matter", code="card_yaml",
        )
    try:
        loaded = yaml.load("".join(lines[1:closing]), Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark else ""
        raise EngineInputError(
            f"is not valid YAML{where}: {exc.problem or exc.context}",
            file=file, field="front matter", code="card_yaml",
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise EngineInputError(f"is not valid YAML ({type(exc).__name__})", file=file, field="front matter",
                               code="card_yaml") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict) or not all(isinstance(key, str) for key in loaded):
        raise EngineInputError(
            f"must be a mapping of `key: value` lines, got {type(loaded).__name__}",
            file=file, field="front matter", code="card_yaml",
        )
    return Card(front_matter=loaded, body="".join(lines[closing + 1 :]))


def read_card(path: Path) -> Card:
    """Read and parse a card file, refusing oversized or non-UTF-8 ones."""
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise EngineInputError(f"card is {size} bytes; at most {MAX_CARD_BYTES} allowed", file=path.name, code="too_large")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EngineInputError(f"card is not UTF-8 text (byte {exc.start})", file=path.name, code="encoding") from None
    return parse_card(text, file=path.name)


def card_license(card: Card, *, file: str = "README.md") -> str:
    """The card's license id, which must be present and one of KNOWN_LICENSES."""
    value = card.front_matter.get("license")
    if value is None:
        raise EngineInputError("is missing from the front matter; add an SPDX or Hub license id such as apache-2.0",
                               file=file, field="license", code="license")
    if not isinstance(value, str) or value.strip().lower() not in KNOWN_LICENSES:
        raise EngineInputError(
            f"{quote(value)} is not a known license id; use an SPDX or Hub id such as apache-2.0, mit, "
            "cc-by-4.0, llama3 (or `other` with a license_name)",
            file=file, field="license", code="license",
        )
    license_id = value.strip().lower()
    name = card.front_matter.get("license_name")
    if license_id == "other" and not (isinstance(name, str) and name.strip()):
        raise EngineInputError("is required when the license is `other` (add a license_link too)",
                               file=file, field="license_name", code="license")
    return license_id


def card_base_models(card: Card, *, file: str = "README.md") -> list[str]:
    """The card's `base_model` as a list (a card may name one or several); empty when absent."""
    return _string_list(card.front_matter, "base_model", file)


def check_card_fields(card: Card, *, file: str = "README.md") -> dict[str, Any]:
    """Check the descriptive fields the hub indexes and return them, normalized, for the report."""
    fields: dict[str, Any] = {}
    for key in ("tags", "datasets", "language"):
        if key in card.front_matter:
            fields[key] = _string_list(card.front_matter, key, file, allow_scalar=key != "tags")
    for key in ("task", "pipeline_tag"):
        if key in card.front_matter:
            value = card.front_matter[key]
            if not isinstance(value, str) or not value.strip():
                raise EngineInputError(f"must be a non-empty string, got {quote(value)}", file=file, field=key, code="card_field")
            fields[key] = value.strip()
    return fields


def _string_list(front_matter: dict[str, Any], key: str, file: str, *, allow_scalar: bool = True) -> list[str]:
    value = front_matter.get(key)
    if value is None:
        return []
    if allow_scalar and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        expected = "a list of non-empty strings" + (" or one string" if allow_scalar else "")
        raise EngineInputError(f"must be {expected}, got {quote(value)}", file=file, field=key, code="card_field")
    return [item.strip() for item in value]


"""Stack recipes in YAML, in the spirit of mergekit's configs, turned into the hub's recipe JSON.

    base_model: HuggingFaceTB/SmolLM2-135M-Instruct
    adapters:
      - adapter: alice/sql-helper@2     # "@N" pins a version; the latest published one otherwise
        weight: 0.7
      - bob/poet                        # weight 1.0
    method: ties                        # default linear
    parameters: {density: 0.5}
    output: merged                      # or adapter, gguf-q4_k_m, ...: any output the hub offers
    dtype: bf16                         # an output parameter; `output: {type: merged, dtype: bf16}` works too

Only the shape is checked here, with the field named in every message; the names of methods
and outputs and the values of their parameters are the hub's to judge, so new ones need no new
CLI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from nomoat_cli.errors import CliError

ADAPTER_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[0-9]+)?$")
TOP_LEVEL = ("adapters", "base_model", "dtype", "method", "output", "parameters")
ADAPTER_KEYS = ("adapter", "weight")


class RecipeError(CliError):
    """A recipe that cannot be sent: exit code 1, with the file and field in the message."""


def _fail(source: str, field: str, message: str) -> RecipeError:
    return RecipeError(f"{source}: {field}: {message}")


def _name(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


def _adapter(entry: Any, field: str, source: str) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"adapter": entry}
    if not isinstance(entry, dict):
        raise _fail(source, field, f'expected "owner/name[@version]" or {{adapter: ..., weight: ...}}, got '
                                   f"{_name(entry)}")
    unknown = sorted(set(entry) - set(ADAPTER_KEYS), key=str)
    if unknown:
        raise _fail(source, f"{field}.{unknown[0]}", f"unknown key (allowed: {', '.join(ADAPTER_KEYS)})")
    ref = entry.get("adapter")
    if not isinstance(ref, str) or not ADAPTER_REF_RE.match(ref):
        raise _fail(source, f"{field}.adapter", f'expected "owner/name" or "owner/name@version", got {ref!r}')
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise _fail(source, f"{field}.weight", f"expected a number, got {weight!r}")
    return {"adapter": ref, "weight": weight}


def recipe_from_dict(data: Any, *, source: str = "recipe", output: str | None = None) -> dict[str, Any]:
    """The hub's recipe JSON for a parsed YAML recipe.

    `output` (from --output) replaces the recipe's whole output, its parameters (dtype, …) included:
    they belong to the output type they were written for.
    """
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a mapping with base_model and adapters, got {_name(data)}")
    unknown = sorted(set(data) - set(TOP_LEVEL), key=str)
    if unknown:
        raise _fail(source, str(unknown[0]), f"unknown key (allowed: {', '.join(TOP_LEVEL)})")
    base = data.get("base_model")
    if not isinstance(base, str) or not base.strip():
        raise _fail(source, "base_model", "is required: the base model's name on the hub")
    adapters = data.get("adapters")
    if not isinstance(adapters, list) or not adapters:
        raise _fail(source, "adapters", "is required: a list of adapters (owner/name[@version]) with weights")
    recipe: dict[str, Any] = {"base_model": base.strip(),
                              "adapters": [_adapter(a, f"adapters[{i}]", source) for i, a in enumerate(adapters)]}

    method, params = data.get("method", "linear"), data.get("parameters")
    if not isinstance(method, str) or not method:
        raise _fail(source, "method", f"expected a method name such as linear or ties, got {method!r}")
    if params is not None and not isinstance(params, dict):
        raise _fail(source, "parameters", f"expected a mapping such as {{density: 0.5}}, got {_name(params)}")
    recipe["method"] = {"name": method, "params": params} if params else method

    spec = output or data.get("output", "merged")
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise _fail(source, "output", f"expected an output name such as merged, or {{type: ..., ...}}, got {spec!r}")
    if "dtype" in data and not output:
        if "dtype" in spec:
            raise _fail(source, "dtype", "is given twice: at the top level and in output")
        spec = {**spec, "dtype": data["dtype"]}
    recipe["output"] = spec
    return recipe


def load_recipe(path: Path, *, output: str | None = None) -> dict[str, Any]:
    """Read and convert a YAML recipe file; every problem is one RecipeError line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read it ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{path}: invalid YAML{where}: {problem}") from None
    return recipe_from_dict(data, source=str(path), output=output)


def is_recipe_path(argument: str) -> bool:
    """`nomoat pull` takes a recipe file or an owner/name reference; a YAML name or an existing file is a recipe."""
    return argument.endswith((".yaml", ".yml")) or Path(argument).is_file()

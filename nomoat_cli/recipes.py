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

A mergekit config whose models are LoRA adapters on one base works too:

    merge_method: ties
    models:
      - model: HuggingFaceTB/SmolLM2-135M-Instruct+alice/sql-helper
        parameters: {weight: 0.7, density: 0.5}
    dtype: bfloat16

The shape is checked here with the hub's own schema (`workers.engine.recipe_schema`, pure Python, no
torch: it ships in the same `nomoat` distribution as this client), with the field named in every
message; whether the adapters exist and the method's parameters are in range is the hub's to judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nomoat_cli.errors import CliError
from workers.engine.errors import EngineInputError
from workers.engine.recipe_schema import parse_stack_request


class RecipeError(CliError):
    """A recipe that cannot be sent: exit code 1, with the file and field in the message."""


def recipe_from_dict(data: Any, *, source: str = "recipe", output: str | None = None) -> dict[str, Any]:
    """The hub's recipe JSON for a parsed YAML recipe (ours or a mergekit config).

    `output` (from --output) replaces the recipe's whole output, its parameters (dtype, …) included:
    they belong to the output type they were written for.
    """
    if isinstance(data, dict) and output:
        data = {key: value for key, value in data.items() if key not in ("output", "dtype", "out_dtype")}
    try:
        recipe = parse_stack_request(data).to_json()
    except EngineInputError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    if output:
        recipe["output"] = {"type": output}
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

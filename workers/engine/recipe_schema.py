"""The stack request's one schema (pydantic v2): what a client sends to `POST /api/v1/stacks`, what the CLI
reads from a YAML recipe, and what the OpenAPI schema documents, all from these models.

A request names adapters by hub name; the hub resolves them (versions, content hashes) into the engine's
hashed `recipe.Recipe`, which checks the method's and output's parameters against `methods` and `outputs`.
Accepted shapes: the canonical one (`method: {name, params}`, `output: {type, ...}`), the CLI's shorthand
(`method: ties`, top-level `parameters` and `dtype`, a bare "owner/name" adapter, `output: merged`), and a
mergekit config whose `models:` use mergekit's `base+adapter` LoRA syntax (`MergekitConfigIn`).

Every refusal is an EngineInputError naming the field exactly (`adapters[2].weight`). Pure: no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from workers.engine.errors import EngineInputError, quote
from workers.engine.fields import parse_weight
from workers.engine.methods import DEFAULT_METHOD, METHODS
from workers.engine.outputs import OUTPUT_DTYPES, OUTPUT_KINDS
from workers.engine.recipe import MAX_ADAPTERS

ADAPTER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[0-9]+)?")
DEFAULT_OUTPUT = "merged"


def _refuse(message: str, field: str | None = None) -> PydanticCustomError:
    """A refusal in our words; `field` overrides where pydantic would place it (checks across fields)."""
    return PydanticCustomError("invalid", message, {"field": field} if field is not None else None)


class StackAdapterIn(BaseModel):
    """One adapter of the stack: its hub name, optionally pinned to a version, and its weight."""

    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(description='"owner/name", or "owner/name@N" to pin version N (else the latest published)')
    # Whole numbers only; the hub checks them (and that they agree with an "@N" pin) while resolving the entry.
    version: Annotated[Any, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1},
                                                      {"type": "string", "pattern": "^[0-9]+$"}],
                                            "description": "the version to use (same as an @N pin)"})] = None
    weight: Annotated[Any, WithJsonSchema({"type": "number", "minimum": -100, "maximum": 100,
                                           "description": "scales this adapter's delta; not 0"})] = 1.0

    @field_validator("adapter")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ADAPTER_NAME_RE.fullmatch(value):
            raise _refuse(f'expected "owner/name" or "owner/name@version", got {quote(value)}')
        return value

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any, info) -> float:
        try:
            return parse_weight(value, "")
        except EngineInputError as exc:
            name = info.data.get("adapter")
            raise _refuse(f"{name}: {exc}" if name and exc.code != "type" else str(exc)) from None


class StackMethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the combining method", json_schema_extra={"enum": list(METHODS)})
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters, e.g. density")


class StackOutputIn(BaseModel):
    """An output kind and its parameters (dtype, rank, max_shard_bytes ... as the kind takes)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="what to build", json_schema_extra={"enum": list(OUTPUT_KINDS)})


def _as_object(key: str):
    """A bare string stands for {key: string} (`method: ties`, `output: merged`, `adapters: [alice/sql]`)."""
    def convert(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else value

    return convert


class StackRecipeIn(BaseModel):
    """A stack recipe as a client sends it (see the module's notes for the accepted shapes)."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field(min_length=1, max_length=200, description="e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    adapters: list[StackAdapterIn] = Field(description=f"1 to {MAX_ADAPTERS} adapters; a bare \"owner/name\" has "
                                                     "weight 1.0")
    method: StackMethodIn = Field(default_factory=lambda: StackMethodIn(name=DEFAULT_METHOD),
                             description='"linear", or {"name": "ties", "params": {"density": 0.5}}')
    parameters: dict[str, Any] | None = Field(default=None, description="shorthand for method.params")
    output: StackOutputIn = Field(default_factory=lambda: StackOutputIn(type=DEFAULT_OUTPUT),
                             description='"merged", or {"type": "merged", "dtype": "bf16"}')
    dtype: str | None = Field(default=None, description="shorthand for output.dtype",
                              json_schema_extra={"enum": list(OUTPUT_DTYPES)})

    @field_validator("base_model", mode="before")
    @classmethod
    def _base(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _refuse("is required: the base model's name on the hub")
        return value.strip()

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapters(cls, value: Any) -> Any:
        # The count first: a request of 10,000 entries is refused before any is looked at.
        if not isinstance(value, list) or not value:
            raise _refuse("is required: a stack needs a non-empty list of adapters (owner/name[@version])")
        if len(value) > MAX_ADAPTERS:
            raise _refuse(f"at most {MAX_ADAPTERS} adapters per stack, got {len(value)}")
        return [_as_object("adapter")(entry) for entry in value]

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if isinstance(value, str) and not value:
            raise _refuse("expected a method name such as linear or ties")
        return _as_object("name")(value)

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, Mapping):
            raise _refuse(f"expected a mapping such as {{density: 0.5}}, got {type(value).__name__}")
        return value

    @field_validator("output", mode="before")
    @classmethod
    def _output(cls, value: Any) -> Any:
        value = _as_object("type")(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
            raise _refuse(f"expected an output name such as merged, or {{type: ..., ...}}, got {quote(value)}")
        return value

    @model_validator(mode="after")
    def _shorthands(self) -> StackRecipeIn:
        """Fold the CLI's top-level `parameters` and `dtype` into the method and the output."""
        if self.parameters:
            if self.method.params:
                raise _refuse("is given twice: at the top level and in method.params", "parameters")
            self.method = StackMethodIn(name=self.method.name, params=dict(self.parameters))
        if self.dtype is not None:
            if "dtype" in (self.output.model_extra or {}):
                raise _refuse("is given twice: at the top level and in output", "dtype")
            self.output = StackOutputIn(type=self.output.type, **(self.output.model_extra or {}), dtype=self.dtype)
        self.parameters = self.dtype = None
        return self

    def to_json(self) -> dict[str, Any]:
        """The canonical request: what the hub stores as the client's request and what the CLI sends."""
        return {
            "base_model": self.base_model,
            "adapters": [{"adapter": a.adapter, "weight": a.weight, **({"version": a.version} if a.version is not None
                                                                        else {})} for a in self.adapters],
            "method": {"name": self.method.name, "params": dict(self.method.params)},
            "output": {"type": self.output.type, **(self.output.model_extra or {})},
        }


# --- mergekit configs ------------------------------------------------------------------------------------------------

# mergekit's method names, and ours for each (with how its parameters differ).
MERGEKIT_METHODS = ("linear", "task_arithmetic", "ties", "dare_ties", "dare_linear")
MERGEKIT_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp16": "fp16",
                   "fp32": "fp32"}
# Global parameters of mergekit's task-arithmetic methods that ours share by name.
MERGEKIT_GLOBAL_PARAMS = ("normalize", "lambda", "rescale")


class MergekitModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description='"base+owner/adapter": the base model with a hub adapter (LoRA) applied, or the '
                                   "base model alone")
    parameters: dict[str, Any] = Field(default_factory=dict, description="weight, density")

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        return {} if value is None else value


class MergekitConfigIn(BaseModel):
    """A mergekit config (mergekit/config.py's MergeConfiguration) whose models are LoRA adapters on one base:
    `model: HuggingFaceTB/SmolLM2-135M-Instruct+alice/sql`. Slices, modules, gradients and per-tensor filters
    have no counterpart in a stack and are refused, naming the field."""

    model_config = ConfigDict(extra="forbid")

    merge_method: str = Field(json_schema_extra={"enum": list(MERGEKIT_METHODS)})
    models: list[MergekitModelIn] = Field(min_length=1)
    base_model: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    dtype: str | None = Field(default=None, description=f"one of {', '.join(MERGEKIT_DTYPES)}")
    out_dtype: str | None = Field(default=None, description="as dtype; the merged model's dtype when given")
    tokenizer_source: str | None = Field(default=None, description='only "base" (a stack keeps its base\'s tokenizer)')

    @field_validator("merge_method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value not in MERGEKIT_METHODS:
            raise _refuse(f"{quote(value)} has no counterpart here; expected one of {', '.join(MERGEKIT_METHODS)}")
        return value

    @field_validator("dtype", "out_dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        if value is not None and value not in MERGEKIT_DTYPES:
            raise _refuse(f"expected one of {', '.join(MERGEKIT_DTYPES)}, got {quote(value)}")
        return value

    @field_validator("tokenizer_source")
    @classmethod
    def _tokenizer(cls, value: str | None) -> str | None:
        if value not in (None, "base"):
            raise _refuse(f'a stack keeps its base model\'s tokenizer: only "base", got {quote(value)}')
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _globals(cls, value: Any) -> Any:
        return {} if value is None else value

    def to_request(self) -> dict[str, Any]:
        """The same stack as our request (`StackRecipeIn` then checks it like any other)."""
        base, adapters, densities = self.base_model, [], []
        for index, entry in enumerate(self.models):
            field = f"models[{index}]"
            model, plus, adapter = entry.model.partition("+")
            if not plus:
                if base is not None and model != base:
                    raise EngineInputError(f"{quote(model)} is neither the base model nor \"base+owner/adapter\": a "
                                           "stack combines LoRA adapters on one base", field=f"{field}.model")
                base = model
                continue  # the base itself (mergekit lists it for ties): it adds no delta
            if base is not None and model != base:
                raise EngineInputError(f"{quote(model)} is not the base model {quote(base)}: a stack has one base",
                                       field=f"{field}.model")
            base = model
            unknown = sorted(set(entry.parameters) - {"weight", "density"})
            if unknown:
                raise EngineInputError(f"unknown parameter {quote(unknown[0])} (per model: weight, density)",
                                       field=f"{field}.parameters.{unknown[0]}")
            weight = entry.parameters.get("weight", self.parameters.get("weight"))
            if weight is None:
                raise EngineInputError("is required (mergekit's methods need a weight per model)",
                                       field=f"{field}.parameters.weight", code="required")
            adapters.append({"adapter": adapter, "weight": weight, "field": f"{field}.parameters.weight"})
            if "density" in entry.parameters:
                densities.append((entry.parameters["density"], f"{field}.parameters.density"))
        if base is None:
            raise EngineInputError("no base model: name it in base_model or as \"base+owner/adapter\"",
                                   field="base_model", code="required")
        if not adapters:
            raise EngineInputError('no adapter: a stack needs models of the form "base+owner/adapter"', field="models",
                                   code="required")
        return {"base_model": base, "adapters": adapters, "method": self._method_request(adapters, densities),
                "output": {"type": DEFAULT_OUTPUT, "dtype": MERGEKIT_DTYPES[self.out_dtype or self.dtype or "bf16"]}}

    def _method_request(self, adapters: list[dict[str, Any]], densities: list[tuple[Any, str]]) -> dict[str, Any]:
        unknown = sorted(set(self.parameters) - {"weight", "density", *MERGEKIT_GLOBAL_PARAMS})
        if unknown:
            raise EngineInputError(f"unknown parameter {quote(unknown[0])} (allowed: weight, density, "
                                   f"{', '.join(MERGEKIT_GLOBAL_PARAMS)})", field=f"parameters.{unknown[0]}")
        if self.merge_method == "linear":
            # mergekit's linear normalizes by default: W0 + Σ (w_i / Σ w) ΔW_i, our linear with those weights.
            if self.parameters.get("normalize", True) is True:
                total = sum(a["weight"] for a in adapters if isinstance(a["weight"], int | float))
                if total == 0:
                    raise EngineInputError("the weights add up to 0, so normalizing divides by 0",
                                           field=adapters[0]["field"])
                for adapter in adapters:
                    if isinstance(adapter["weight"], int | float) and not isinstance(adapter["weight"], bool):
                        adapter["weight"] = adapter["weight"] / total
            return {"name": "linear", "params": {}}
        params = {name: self.parameters[name] for name in MERGEKIT_GLOBAL_PARAMS if name in self.parameters}
        if "density" in METHODS[self.merge_method].params:
            values = {value for value, _ in densities} | ({self.parameters["density"]} if "density" in self.parameters
                                                          else set())
            if len(values) > 1:
                raise EngineInputError("every model must have the same density here (a stack has one density)",
                                       field=densities[-1][1])
            if values:
                params["density"] = values.pop()
        return {"name": self.merge_method, "params": params}


# --- parsing ---------------------------------------------------------------------------------------------------------


def _field_of(error: dict[str, Any]) -> str:
    """pydantic's location as our field name: ("adapters", 2, "weight") → adapters[2].weight."""
    if (error.get("ctx") or {}).get("field") is not None:
        return error["ctx"]["field"]
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        return ""  # an unknown key of the recipe itself
    field = ""
    for part in error["loc"]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field


def _message_of(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    """(message, code) for one pydantic error, in the engine's words."""
    kind = error["type"]
    if kind == "extra_forbidden":
        owner, key = _model_at(model, error["loc"][:-1]), error["loc"][-1]
        if len(error["loc"]) == 1:  # a key of the recipe itself: the message names it (the field is the recipe)
            return f"{key}: unknown key (an unknown field; allowed: {', '.join(owner.model_fields)})", "invalid"
        what = "an adapter entry has" if owner is StackAdapterIn else "allowed:"
        return f"unknown key {key!r}; {what} {', '.join(owner.model_fields)}", "invalid"
    if kind == "missing":
        return "is required", "required"
    return error["msg"], "invalid" if kind == "invalid" else "type"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The model that the location `loc` (of an object, not a field) points at, e.g. ("adapters", 2) → StackAdapterIn."""
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = next(a for a in (annotation, *getattr(annotation, "__args__", ()))
                     if isinstance(a, type) and issubclass(a, BaseModel))
    return model


def _validate(model: type[BaseModel], data: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        message, code = _message_of(error, model)
        raise EngineInputError(message, field=_field_of(error), code=code) from None


def is_mergekit_config(data: Mapping[str, Any]) -> bool:
    """A mergekit config has `models` (ours has `adapters`)."""
    return "models" in data and "adapters" not in data


def parse_stack_request(data: Any) -> StackRecipeIn:
    """Validate a request in any accepted shape; every refusal is an EngineInputError naming the field."""
    if not isinstance(data, Mapping):
        raise EngineInputError(f"expected a mapping with base_model and adapters, got {type(data).__name__}")
    if is_mergekit_config(data):
        converted = _validate(MergekitConfigIn, data).to_request()
        weight_fields = [entry.pop("field") for entry in converted["adapters"]]
        try:
            return _validate(StackRecipeIn, converted)
        except EngineInputError as exc:  # name the field as the mergekit config has it
            match = re.fullmatch(r"adapters\[(\d+)\](\.\w+)?", exc.field)
            if match is None:
                raise
            weight_field = weight_fields[int(match[1])]
            field = weight_field if match[2] == ".weight" else weight_field.replace(".parameters.weight", ".model")
            raise EngineInputError(str(exc).split(": ", 1)[-1], field=field, code=exc.code) from None
    return _validate(StackRecipeIn, data)


class StackRecipeBody(RootModel[StackRecipeIn | MergekitConfigIn]):
    """What `POST /api/v1/stacks` reads (as JSON or YAML): our recipe, or a mergekit config. Documentation only:
    `parse_stack_request` tells the two apart by their keys and names the field of every refusal."""

"""Small validators for recipes: each takes the raw value and the dotted field name, returns the normal form.

Every refusal is an EngineInputError naming the field (`adapters[2].weight`) and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workers.engine.errors import EngineInputError, quote

# An adapter's weight scales its delta: past this a stack is noise (1e308 makes every tensor inf), never a model.
MAX_WEIGHT = 100.0

Parser = Callable[[Any, str], Any]
REQUIRED = object()


def real(value: Any) -> float | None:
    """A finite real number as a float; None for anything else (bools, strings, NaN, 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def is_number(value: Any) -> bool:
    return real(value) is not None


def finite(value: Any, field: str) -> float:
    """A real number as a float, rounded to 12 significant digits so 0.1 + 0.2 and 0.3 hash alike."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineInputError(f"expected a number, got {type(value).__name__}", field=field, code="type")
    number = real(value)
    if number is None:
        raise EngineInputError("must be a finite number", field=field)
    return float(f"{number:.12g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def parse_weight(value: Any, field: str) -> float:
    """An adapter's weight: a finite, non-zero number with |weight| <= MAX_WEIGHT, in its canonical form."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineInputError(f"expected a number, got {type(value).__name__}", field=field, code="type")
    number = real(value)
    if number is None or abs(number) > MAX_WEIGHT:
        shown = f"{number:g}" if number is not None else "not finite" if isinstance(value, float) else "too large"
        raise EngineInputError(f"weight {shown} is out of range; a weight is a number from {-MAX_WEIGHT:g} to "
                               f"{MAX_WEIGHT:g}", field=field)
    weight = finite(number, field)
    if weight == 0.0:
        raise EngineInputError("a weight of 0 adds nothing; remove the adapter instead", field=field)
    return weight


def density(value: Any, field: str) -> float:
    density = finite(value, field)
    if not 0.0 < density <= 1.0:
        raise EngineInputError(f"density must be in (0, 1], got {density}", field=field)
    return density


def int_in(low: int, high: int) -> Parser:
    def parse(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise EngineInputError(f"expected an integer in {low}..{high}, got {quote(value)}", field=field, code="type")
        return value

    return parse


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise EngineInputError(f"expected true or false, got {quote(value)}", field=field, code="type")
    return value


def choice(*choices: str) -> Parser:
    def parse(value: Any, field: str) -> str:
        if value not in choices:
            raise EngineInputError(f"expected one of {', '.join(choices)}, got {quote(value)}", field=field)
        return value

    return parse


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EngineInputError(f"expected an object, got {type(value).__name__}", field=field, code="type")
    return value


def reject_unknown(raw: Mapping[str, Any], allowed: Iterable[str], field: str) -> None:
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        where = f"{field}.{unknown[0]}" if field else str(unknown[0])
        listed = ", ".join(sorted(allowed)) or "none"
        raise EngineInputError(f"unknown key {quote(unknown[0])} (allowed: {listed})", field=where)


def parse_params(raw: Any, schema: Mapping[str, tuple[Parser, Any]], field: str) -> dict[str, Any]:
    """Validate `raw` against {name: (parser, default or REQUIRED)}; unknown names are errors."""
    raw = mapping(raw, field)
    reject_unknown(raw, schema, field)
    params = {}
    for name, (parse, default) in schema.items():
        if name in raw and raw[name] is not None:
            params[name] = parse(raw[name], f"{field}.{name}")
        elif default is REQUIRED:
            raise EngineInputError("is required", field=f"{field}.{name}", code="required")
        else:
            params[name] = default
    return params

"""The one error type the engine raises for bad input: it names the file, the field and the expectation."""

from __future__ import annotations

import json


class EngineInputError(ValueError):
    """Bad input: `file` and `field` say where, the message says what was expected."""

    def __init__(self, message: str, *, file: str = "", field: str = "", code: str = "invalid") -> None:
        self.file = file
        self.field = field
        self.code = code
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


def quote(value: object, limit: int = 80) -> str:
    """A value as an error message shows it: JSON where it can be, cut short so hostile input stays readable."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VerificationError(RuntimeError):
    """An artifact failed its verification gate: it is never published; `details` holds the gate's figures."""

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}

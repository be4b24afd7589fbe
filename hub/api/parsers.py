"""The API's JSON parser: DRF's, refusing documents that would crash a view instead of answering a 400."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No request body of the hub nests this deep; deeper ones would exhaust the stack of code that walks them.
MAX_DEPTH = 64


class JSONParser(parsers.JSONParser):
    """Also refuses nesting too deep to decode or to walk, and NUL characters, which PostgreSQL text cannot hold."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        check_parsed(data)
        return data


def check_parsed(data: object) -> None:
    """Refuse a parsed body (JSON, or YAML where a view reads it) nested too deep or holding NUL characters."""
    pending = [(data, 1)]  # (value, how many arrays and objects hold it, counting itself); no recursion
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            raise ParseError("JSON parse error - strings must not contain NUL (\\u0000)")

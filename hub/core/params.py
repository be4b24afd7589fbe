"""Numbers as clients write them in query strings, forms and cards."""

from __future__ import annotations

import re

# At most 18 digits: every such number fits a database's 64-bit integer.
ASCII_NUMBER = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str) -> int | None:
    """`text` as a non-negative integer when it is one in ASCII digits, else None.

    Not `str.isdigit()`: it accepts "²" and other digits that `int()` refuses, and `int()` refuses numbers of more
    than 4300 digits.
    """
    return int(text) if ASCII_NUMBER.fullmatch(text) else None

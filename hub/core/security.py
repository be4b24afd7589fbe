"""Start-up checks of secrets (imported by settings, so nothing here may touch Django's settings)."""

from __future__ import annotations

import math

# Django's own deployment check asks for 50 characters of at least 5 kinds; an estimate of the key's randomness
# (its length times the bits of its alphabet) also refuses long keys of few symbols ("abab…", a word repeated).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_DISTINCT = 5
SECRET_KEY_MIN_BITS = 200


def secret_key_problem(key: str) -> str | None:
    """Why `key` is too weak to sign sessions and tokens with, or None when it looks random enough."""
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    distinct = len(set(key))
    if distinct < SECRET_KEY_MIN_DISTINCT:
        return f"it uses only {distinct} distinct characters"
    if key.startswith("django-insecure-"):
        return "it is a generated development key (django-insecure-…)"
    bits = len(key) * math.log2(distinct)
    if bits < SECRET_KEY_MIN_BITS:
        return f"it holds about {bits:.0f} bits of randomness at most, under {SECRET_KEY_MIN_BITS}"
    return None

"""Rates as people write them ("10/minute"): pure, so settings can parse them at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE_RE = re.compile(r"\s*([0-9]{1,9})\s*/\s*(second|minute|hour|day)s?\s*")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int
    text: str

    @classmethod
    def parse(cls, text: str, *, name: str = "rate") -> Rate:
        match = RATE_RE.fullmatch(text)
        if match is None:
            raise ImproperlyConfigured(f"{name}={text!r}: expected `N/second`, `N/minute`, `N/hour` or `N/day`")
        return cls(count=int(match[1]), seconds=PERIODS[match[2]], text=f"{match[1]} per {match[2]}")

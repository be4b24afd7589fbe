"""What every upload's validation reports, and the checks adapters and datasets share.

A report is a list of named `Check`s, each saying which file, field or tensor is wrong and what was
expected; `Checks.attempt` turns an EngineInputError into a failed check instead of a crash, so an
uploader sees every problem at once. Adapter validation (`validation`) and dataset validation
(`datasets`) both build on this module, and neither on the other's internals.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from workers.engine.cards import Card, card_license, check_card_fields, read_card
from workers.engine.errors import EngineInputError

CARD = "README.md"
CARD_CHECKS = ("card.front_matter", "card.license", "card.fields")
DEFAULT_MAX_FILE_BYTES = 8 * 1024**3
MAX_LISTED = 5

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str
    file: str = ""
    field: str = ""
    skipped: bool = False  # did not run (a prerequisite failed or it does not apply); never counts as a failure


@dataclass
class ValidationReport:
    kind: str
    checks: list[Check]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed and not check.skipped]

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, name: str) -> list[Check]:
        """All checks of one name (per-file checks repeat a name)."""
        return [check for check in self.checks if check.name == name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form, for the version row in the database."""
        return {"kind": self.kind, "ok": self.ok, "checks": [asdict(check) for check in self.checks], "stats": self.stats}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        return cls(kind=data["kind"], checks=[Check(**check) for check in data["checks"]], stats=dict(data["stats"]))


class Checks:
    """Collects checks in order; `attempt` turns an EngineInputError into a failed check instead of a crash."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, passed: bool, message: str, *, file: str = "", field: str = "") -> bool:
        self.items.append(Check(name, passed, message, file=file, field=field))
        return passed

    def skip(self, names: Iterable[str], reason: str, *, file: str = "") -> None:
        self.items.extend(Check(name, False, f"skipped: {reason}", file=file, skipped=True) for name in names)

    def problems(self, name: str, problems: list[str], passed_message: str, *, file: str = "") -> bool:
        """One check that fails listing the first few problems, or passes with `passed_message`."""
        return self.add(name, not problems, summarize(problems) if problems else passed_message, file=file)

    def attempt(self, name: str, action: Callable[[], T], passed_message: str | Callable[[T], str], *,
                file: str = "") -> tuple[bool, T | None]:
        try:
            value = action()
        except EngineInputError as exc:
            self.add(name, False, str(exc), file=exc.file or file, field=exc.field)
            return False, None
        self.add(name, True, passed_message(value) if callable(passed_message) else passed_message, file=file)
        return True, value


def summarize(problems: list[str], limit: int = MAX_LISTED) -> str:
    """The first `limit` problems joined, then how many more there are."""
    text = "; ".join(problems[:limit])
    return f"{text}; and {len(problems) - limit} more" if len(problems) > limit else text


@dataclass(frozen=True)
class FolderListing:
    files: dict[str, int]  # regular top-level files: name -> size in bytes
    others: dict[str, str]  # anything else at the top level: name -> what it is


def scan_folder(folder: Path) -> FolderListing:
    """List an upload folder's top level without following links."""
    files: dict[str, int] = {}
    others: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                others[entry.name] = "a symbolic link"
            elif entry.is_dir(follow_symlinks=False):
                others[entry.name] = "a folder (upload the files at the top level)"
            elif entry.is_file(follow_symlinks=False):
                files[entry.name] = entry.stat(follow_symlinks=False).st_size
            else:
                others[entry.name] = "a special file"
    return FolderListing(files=dict(sorted(files.items())), others=dict(sorted(others.items())))


def check_file_sizes(checks: Checks, listing: FolderListing, max_file_bytes: int) -> set[str]:
    """The `files.size` check; returns the files small enough to open."""
    too_big = {name: size for name, size in listing.files.items() if size > max_file_bytes}
    checks.problems("files.size", [f"{name} is {size} bytes; at most {max_file_bytes} allowed" for name, size in too_big.items()],
                    f"every file is at most {max_file_bytes} bytes")
    return set(listing.files) - set(too_big)


def check_card(checks: Checks, folder: Path, usable: set[str], stats: dict[str, Any]) -> Card | None:
    """The card.* checks every upload kind shares, for an optional README.md; returns the parsed card.

    The license and the indexed fields go into `stats` only as validated, so they are JSON-safe.
    """
    stats["license"] = None
    if CARD not in usable:
        checks.skip(CARD_CHECKS, f"no usable {CARD} (a card is optional)", file=CARD)
        return None
    parsed, card = checks.attempt("card.front_matter", lambda: read_card(folder / CARD), "front matter parses", file=CARD)
    if not parsed or card is None:
        checks.skip(CARD_CHECKS[1:], "the front matter did not parse", file=CARD)
        return None
    stats["license"] = checks.attempt("card.license", lambda: card_license(card), lambda value: f"license {value}",
                                      file=CARD)[1]
    fields = checks.attempt("card.fields", lambda: check_card_fields(card), "tags, datasets and task are well-formed",
                            file=CARD)[1]
    stats.update(fields or {})
    return card

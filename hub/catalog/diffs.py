"""Two versions of a repository compared: the card's text, each small text file's lines, and every file by sha256.

Text is read as the file page shows it (`previews.file_text`: a bounded prefix, JSON pretty-printed), so a diff
page costs no more than opening the files; anything not viewable as text is compared by its digest and size only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from hub.catalog import previews
from hub.catalog.models import Version, VersionFile
from hub.catalog.validation import is_hub_made

CONTEXT_LINES = 3
MAX_DIFF_LINES = 1500  # per file: longer diffs are cut, with a note and the two files' links
CARD_PATH = "README.md"  # the card: compared from the version's card text, not read again from the blob


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "hunk" (a fold between changes), "added", "removed", "same"
    old: int | None  # line number in the older version
    new: int | None  # line number in the newer version
    text: str


@dataclass(frozen=True)
class TextDiff:
    path: str
    lines: list[DiffLine]
    added: int
    removed: int
    cut: int = 0  # lines of the diff left out past MAX_DIFF_LINES

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added", "removed", "changed", "same"
    old: VersionFile | None
    new: VersionFile | None

    @property
    def size_change(self) -> int | None:
        return self.new.blob.size - self.old.blob.size if self.old and self.new else None


@dataclass(frozen=True)
class VersionDiff:
    older: Version
    newer: Version
    files: list[FileChange]
    card: TextDiff
    texts: list[TextDiff] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(change.status == status for change in self.files)

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def removed(self) -> int:
        return self.count("removed")

    @property
    def changed(self) -> int:
        return self.count("changed")


def text_diff(path: str, before: str, after: str, *, context: int = CONTEXT_LINES) -> TextDiff:
    """The changed lines of `before` → `after` with `context` lines around each change, numbered on both sides."""
    old, new = before.splitlines(), after.splitlines()
    lines: list[DiffLine] = []
    added = removed = 0
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        lines.append(DiffLine("hunk", None, None, f"lines {first[1] + 1}–{last[2]} → {first[3] + 1}–{last[4]}"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("same", i1 + k + 1, j1 + k + 1, old[i1 + k]) for k in range(i2 - i1)]
                continue
            lines += [DiffLine("removed", i + 1, None, old[i]) for i in range(i1, i2)]
            lines += [DiffLine("added", None, j + 1, new[j]) for j in range(j1, j2)]
            removed, added = removed + i2 - i1, added + j2 - j1
    return TextDiff(path, lines[:MAX_DIFF_LINES], added, removed, cut=max(0, len(lines) - MAX_DIFF_LINES))


def _text(file: VersionFile | None) -> str:
    return previews.file_text(file) if file is not None else ""


def versions_compare(older: Version, newer: Version) -> VersionDiff:
    """`older` → `newer` (files and their blobs prefetched, as `selectors.versions_of` loads them)."""
    before = {f.path: f for f in older.files.all()}
    after = {f.path: f for f in newer.files.all()}
    files = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        status = ("added" if old is None else "removed" if new is None
                  else "same" if old.blob_id == new.blob_id else "changed")
        files.append(FileChange(path, status, old, new))
    # The hub's own signatures and attestations differ on every version: listed by digest, not compared line by line.
    texts = [text_diff(change.path, _text(change.old), _text(change.new)) for change in files
             if change.status != "same" and change.path != CARD_PATH and not is_hub_made(change.path)
             and all(previews.is_viewable(f) for f in (change.old, change.new) if f is not None)]
    return VersionDiff(older, newer, files, text_diff(CARD_PATH, older.card_text, newer.card_text), texts)

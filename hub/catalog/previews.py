"""What a version's files look like in the page: small text files highlighted (Pygments), a dataset's real rows.

Both read a bounded part of the blob (never a whole large file: a prefix, or a Parquet file's first rows), so a page
stays fast whatever was uploaded.
Nothing here unpickles or executes anything: text is decoded as UTF-8, rows are parsed as JSON, CSV or Parquet (by
pyarrow's reader, never pandas).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from hub.catalog.blobstore import get_blob_store
from hub.catalog.markdown import render_markdown
from hub.catalog.models import VersionFile
from workers.engine.datareport import mask
from workers.engine.datasets import DATA_SUFFIXES, SPLIT_FILE, parquet_columns, records_of
from workers.engine.errors import EngineInputError

TEXT_SUFFIXES = (".md", ".json", ".txt", ".yaml", ".yml", ".toml", ".cfg", ".jsonl", ".csv", ".py")
MAX_TEXT_BYTES = 256 * 1024  # larger text files download instead
ROWS_PER_PAGE = 20
MAX_ROW_BYTES = 4 * 1024 * 1024  # the row viewer reads at most this much of a JSONL or CSV file
MAX_PARQUET_ROWS = 10_000  # and at most this many rows of a Parquet file
CELL_CHARS = 600


def is_viewable(file: VersionFile) -> bool:
    return file.path.lower().endswith(TEXT_SUFFIXES) and file.blob.size <= MAX_TEXT_BYTES


def _read_prefix(file: VersionFile, limit: int) -> bytes:
    return b"".join(get_blob_store().read_range(file.blob.sha256, 0, min(file.blob.size, limit) - 1)) \
        if file.blob.size else b""


@dataclass(frozen=True)
class TextView:
    html: SafeString
    rendered: SafeString | None  # a Markdown file, rendered as the card is
    lines: int


def file_text(file: VersionFile) -> str:
    """A viewable file's text as the page shows it: UTF-8 (bad bytes replaced), JSON pretty-printed."""
    text = _read_prefix(file, MAX_TEXT_BYTES).decode("utf-8", errors="replace")
    if file.path.lower().endswith(".json"):
        with contextlib.suppress(ValueError):  # invalid JSON is shown as uploaded; validation names the problem
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text


def text_view(file: VersionFile) -> TextView:
    """The file highlighted by its name's language (plain text when Pygments knows none; JSON pretty-printed)."""
    text = file_text(file)
    try:
        lexer = get_lexer_for_filename(file.path, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer()
    html = highlight(text, lexer, HtmlFormatter(linenos="table", cssclass="highlight", wrapcode=True))
    rendered = render_markdown(text) if file.path.lower().endswith(".md") else None
    return TextView(mark_safe(html), rendered, text.count("\n") + 1)  # noqa: S308 - Pygments escapes the text


@dataclass
class RowPage:
    file: str
    split: str
    columns: list[tuple[str, str, str]]  # (name, kind of its values, type shown: the file's own type for Parquet)
    rows: list[dict[str, Any]]
    number: int
    first: int  # 1-based index of the first row shown
    total: int | None  # rows in the file, from validation's stats
    has_next: bool
    truncated: bool = False  # the page is past what the viewer reads
    problems: list[str] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1


def data_files(files: list[VersionFile]) -> list[tuple[str, str]]:
    """(path, split) of a dataset version's data files, in split order (train first)."""
    order = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "eval": 2, "test": 3}
    out = []
    for f in files:
        if f.path.lower().endswith(DATA_SUFFIXES):
            match = SPLIT_FILE.fullmatch(f.path)
            out.append((f.path, match["split"].lower() if match else f.path.rsplit(".", 1)[0]))
    return sorted(out, key=lambda item: (order.get(item[1], 9), item[0]))


def row_page(file: VersionFile, split: str, number: int, total: int | None, *, reveal_secrets: bool) -> RowPage:
    """Page `number` (1-based) of the file's rows, read from its first MAX_ROW_BYTES (Parquet: MAX_PARQUET_ROWS rows).
    Strings that look like secrets or personal data are masked unless `reveal_secrets` (the uploader and moderators:
    the data report's rule). A Parquet file's columns are labelled with the types its schema declares."""
    number = max(1, number)
    start = (number - 1) * ROWS_PER_PAGE
    parsed: list[dict[str, Any]] = []
    problems: list[str] = []
    with _row_source(file, start) as (stream, complete, declared):
        for record in records_of(stream, file.path) if stream else ():  # the engine's one parser of data files
            if record.error:
                problems.append(f"{record.place}: {record.error}" if record.place else record.error)
            else:
                parsed.append(record.value if isinstance(record.value, dict) else {"value": record.value})
            if len(parsed) > start + ROWS_PER_PAGE:  # one row past the page says there is a next one
                break
    rows = parsed[start:start + ROWS_PER_PAGE]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    kinds = {c: _column_type([row.get(c) for row in rows]) for c in columns}
    return RowPage(
        file=file.path, split=split, columns=[(c, kinds[c], declared.get(c, kinds[c])) for c in columns],
        rows=[{c: _cell(row.get(c), reveal_secrets) for c in columns} for row in rows], number=number, first=start + 1,
        total=total, has_next=len(parsed) > start + ROWS_PER_PAGE,
        truncated=not rows and not complete and start > 0, problems=problems[:3],
    )


@contextlib.contextmanager
def _row_source(file: VersionFile, start: int) -> Iterator[tuple[BinaryIO | None, bool, dict[str, str]]]:
    """(the stream the viewer parses, whether it is the whole file, the column types the file declares). JSONL and
    CSV: the first MAX_ROW_BYTES, cut at the last whole line. Parquet keeps its schema in a footer, so it is read
    seekably from the store's local copy, and a page past MAX_PARQUET_ROWS rows reads nothing (None)."""
    if not file.path.lower().endswith(".parquet"):
        data = _read_prefix(file, MAX_ROW_BYTES)
        complete = file.blob.size <= MAX_ROW_BYTES
        yield io.BytesIO(data if complete else data[: data.rfind(b"\n") + 1]), complete, {}
    elif start >= MAX_PARQUET_ROWS:
        yield None, False, {}
    else:
        with open(get_blob_store().local_path(file.blob.sha256), "rb") as handle:
            try:
                declared = parquet_columns(handle)
            except EngineInputError:
                declared = {}  # the records name the problem
            handle.seek(0)
            yield handle, True, declared


def _column_type(values: list[Any]) -> str:
    kinds = {_kind(v) for v in values if v is not None}
    if not kinds:
        return "empty"
    return kinds.pop() if len(kinds) == 1 else " or ".join(sorted(kinds))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "role" in v for v in value):
            return "messages"
        return "list"
    return "object"


def _cell(value: Any, reveal_secrets: bool) -> Any:
    """Long strings clipped and secrets masked; chat messages as (role, content) pairs; anything else for the
    `readable` filter."""
    if isinstance(value, str):
        value = value if reveal_secrets else mask(value)
        return value if len(value) <= CELL_CHARS else value[: CELL_CHARS - 1] + "…"
    if isinstance(value, list) and value and all(isinstance(v, dict) and "role" in v for v in value):
        return [{"role": str(m.get("role", "")), "content": _cell(str(m.get("content", "")), reveal_secrets)}
                for m in value]
    return value

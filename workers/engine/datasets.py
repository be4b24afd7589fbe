"""Validate an uploaded dataset: JSONL, CSV or Parquet files of instruction, chat or plain-text rows.

Files are streamed a line (or CSV record, or Parquet batch) at a time, so a multi-gigabyte upload costs no more
memory than its longest row (a Parquet file: one batch of its row group) plus one 16-byte digest per row for
duplicate counting. Every malformed row is reported with its file and line (Parquet: row group and row), up to a
limit, and any malformed row rejects its file: a trainer that skips bad rows silently trains on something other
than what was reviewed. Parquet is read with pyarrow's reader only: nothing is unpickled or converted by pandas.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from workers.engine.cards import Card
from workers.engine.checks import (
    CARD,
    CARD_CHECKS,
    DEFAULT_MAX_FILE_BYTES,
    Checks,
    FolderListing,
    ValidationReport,
    check_card,
    check_file_sizes,
    scan_folder,
)
from workers.engine.errors import EngineInputError, quote

DATA_SUFFIXES = (".jsonl", ".csv", ".parquet")
MAX_LINE_BYTES = 16 * 1024 * 1024
# A Parquet row group is decoded whole, column by column: one larger than this (uncompressed) is refused unread.
MAX_ROW_GROUP_BYTES = 512 * 1024 * 1024
PARQUET_BATCH_ROWS = 1024
PREVIEW_ROWS = 5
PREVIEW_CHARS = 300
PREVIEW_MESSAGES = 10
CHAT_ROLES = ("system", "user", "assistant", "tool")
# A file whose name starts with one of these words declares that split (train.jsonl, test-00001.csv, ...).
# Splits that hold held-out rows (what evaluation scores on and training must not see), in order of preference.
EVAL_SPLITS = ("eval", "validation", "valid", "dev", "test")
SPLIT_FILE = re.compile(r"(?P<split>train|validation|valid|eval|test|dev)(?:[-_.].*)?\.(?:jsonl|csv|parquet)", re.IGNORECASE)
# Every check validate_dataset reports, in its order; dataset.rows repeats per file (and per malformed row).
DATASET_CHECKS = ("files.required", "files.unexpected", "files.size", "dataset.rows", *CARD_CHECKS, "dataset.splits")
FORMAT_FIELDS = {"instruction": ("prompt", "response"), "chat": ("messages",), "text": ("text",)}
# Multiple choice: "choices" and the right one ("answer": its index, or "response": its text), asked by
# "question" / "prompt" and/or "context". A row with "choices" is multiple choice whatever else it has.
CHOICE_FIELDS = ("question", "prompt", "context", "choices", "answer", "response")


class _BadRow(Exception):
    """One row's problem, reported with its place in the file."""


@dataclass
class _FileScan:
    """What one data file held; `errors` keeps only the first few (place, message)."""

    format: str | None = None
    format_place: str = ""
    rows: int = 0
    error_count: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    lengths: list[int] = field(default_factory=lambda: [0, 0, 0])  # min, sum, max characters per row
    preview: list[dict[str, Any]] = field(default_factory=list)

    def error(self, place: str, message: str, limit: int) -> None:
        self.error_count += 1
        if len(self.errors) < limit:
            self.errors.append((place, message))

    def row(self, place: str, row: object, digests: set[bytes]) -> None:
        """Account for one row: check its format against the file's, count duplicates and lengths."""
        row_format, chars = _row_shape(row)
        if self.format is None:
            self.format, self.format_place = row_format, place
        elif row_format != self.format:
            raise _BadRow(f"row is in {row_format} format but this file's rows are {self.format} (from {self.format_place})")
        canonical = canonical_fields(row, row_format)
        digest = hashlib.blake2b(json.dumps(canonical, sort_keys=True).encode(), digest_size=16).digest()
        if digest in digests:
            self.duplicates += 1
        digests.add(digest)
        low, total, high = self.lengths
        self.lengths = [chars if self.rows == 0 else min(low, chars), total + chars, max(high, chars)]
        self.rows += 1
        if len(self.preview) < PREVIEW_ROWS:
            self.preview.append(_preview(canonical))


def validate_dataset(
    folder: Path, *, max_reported_errors: int = 20, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> ValidationReport:
    """Check every .jsonl / .csv / .parquet file of a dataset folder row by row, plus its optional card.

    Each file's first `max_reported_errors` malformed rows are reported one by one, the rest counted.
    """
    folder = Path(folder)
    checks = Checks()
    listing = scan_folder(folder)
    data_files = _check_dataset_files(checks, listing)
    usable = check_file_sizes(checks, listing, max_file_bytes)

    scans: dict[str, _FileScan] = {}
    for name in data_files:
        if name not in usable:
            checks.skip(["dataset.rows"], "the file is too large", file=name)
            continue
        scan = _FileScan()
        digests: set[bytes] = set()
        for record in read_records(folder / name):
            if record.error:
                scan.error(record.place, record.error, max_reported_errors)
                continue
            try:
                scan.row(record.place, record.value, digests)
            except _BadRow as exc:
                scan.error(record.place, str(exc), max_reported_errors)
        if scan.rows == 0 and scan.error_count == 0:
            scan.error("", "the file holds no rows", max_reported_errors)
        for place, message in scan.errors:
            checks.add("dataset.rows", False, f"{name} {place}: {message}" if place else f"{name}: {message}",
                       file=name, field=place)
        if scan.error_count > len(scan.errors):
            checks.add("dataset.rows", False, f"{name}: and {scan.error_count - len(scan.errors)} more malformed rows",
                       file=name)
        if not scan.error_count:
            checks.add("dataset.rows", True, f"{name}: {scan.rows} rows in {scan.format} format", file=name)
        scans[name] = scan

    stats: dict[str, Any] = {}
    card = check_card(checks, folder, usable, stats)
    ok, splits = checks.attempt("dataset.splits", lambda: _splits(card, data_files), _describe_splits)
    stats.update(_dataset_stats(scans), splits=splits if ok else None)
    return ValidationReport(kind="dataset", checks=checks.items, stats=stats)


def _check_dataset_files(checks: Checks, listing: FolderListing) -> list[str]:
    data_files = [name for name in listing.files if name.lower().endswith(DATA_SUFFIXES)]
    checks.add("files.required", bool(data_files), f"{len(data_files)} data files" if data_files else
               "no data files; expected at least one .jsonl, .csv or .parquet file (e.g. train.jsonl)")
    unexpected = [f"{name} is {what}" for name, what in listing.others.items()]
    unexpected += [f"{name} is not a data file" for name in listing.files if name not in data_files and name != CARD]
    checks.problems("files.unexpected", [f"{text}; expected .jsonl, .csv or .parquet files and an optional {CARD}"
                                         for text in unexpected], "no unexpected files")
    return data_files


def _row_shape(row: object) -> tuple[str, int]:
    """The row's format and its length in characters; raises _BadRow saying what is wrong."""
    if not isinstance(row, dict):
        raise _BadRow(f"row must be an object, got {type(row).__name__}")
    if "choices" in row:
        return "multiple_choice", _choice_length(row)
    present = [name for name, keys in FORMAT_FIELDS.items() if any(key in row for key in keys)]
    expected = "prompt + response (instruction), messages (chat), text, or choices (multiple choice)"
    if len(present) != 1:
        found = "none of them" if not present else " and ".join(present) + " fields together"
        raise _BadRow(f"row has {found}; expected exactly one of {expected}")
    row_format = present[0]
    if row_format == "chat":
        return row_format, _chat_length(row["messages"])
    chars = 0
    for key in FORMAT_FIELDS[row_format]:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _BadRow(f"`{key}` must be a non-empty string, got {quote(value, 60)}")
        _check_text(key, value)
        chars += len(value)
    return row_format, chars


def row_format(row: object) -> tuple[str | None, str]:
    """(the row's format, "") for a well-formed row; (None, what is wrong) otherwise."""
    try:
        return _row_shape(row)[0], ""
    except _BadRow as exc:
        return None, str(exc)


def canonical_fields(row: Mapping[str, Any], row_format: str) -> dict[str, Any]:
    """The fields that make a row what it is (two rows equal here are duplicates; extra columns do not count)."""
    keys = CHOICE_FIELDS if row_format == "multiple_choice" else FORMAT_FIELDS[row_format]
    return {key: row[key] for key in keys if key in row}


def row_texts(row: Mapping[str, Any], row_format: str) -> tuple[str, str]:
    """(prompt, response) of a well-formed row: what a model is given and what it should answer. A text row is all
    prompt; a chat row's response is its last assistant message; a multiple-choice row's is its right choice."""
    if row_format == "instruction":
        return row["prompt"], row["response"]
    if row_format == "text":
        return row["text"], ""
    if row_format == "chat":
        asked, reply = chat_turns(row["messages"])
        return "\n".join(m["content"] for m in asked), reply["content"]
    asked = "\n".join(row[key] for key in ("question", "prompt", "context") if row.get(key))
    return asked, row["choices"][choice_answer(row)]


def chat_turns(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(the messages before a well-formed chat row's last assistant message, that message): what a model is
    given and the reply it should learn; later messages (a closing user turn) are not part of either."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]


def choice_answer(row: Mapping[str, Any]) -> int:
    """The index of a multiple-choice row's right answer: `answer`, else the position of `response` in `choices`."""
    choices, answer = row["choices"], row.get("answer")
    if answer is None and row.get("response") in choices:
        answer = choices.index(row["response"])
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise _BadRow(f"`answer` must be the index of the right choice, 0 to {len(choices) - 1} (or `response` one of "
                      f"the choices), got {quote(row.get('answer', row.get('response')), 60)}")
    return answer


def _choice_length(row: Mapping[str, Any]) -> int:
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
        raise _BadRow(f"`choices` must be a list of at least two non-empty strings, got {quote(choices, 60)}")
    asked = [key for key in ("question", "prompt", "context") if key in row]
    for key in asked:
        if not isinstance(row[key], str):
            raise _BadRow(f"`{key}` must be a string, got {quote(row[key], 60)}")
    if not any(row[key].strip() for key in asked):
        raise _BadRow("a multiple-choice row needs a non-empty `question` (or `prompt`) or `context`")
    choice_answer(row)
    for index, choice in enumerate(choices):
        _check_text(f"choices[{index}]", choice)
    return sum(len(row[key]) for key in asked) + sum(len(c) for c in choices)


def _chat_length(messages: object) -> int:
    if not isinstance(messages, list) or not messages:
        raise _BadRow(f"`messages` must be a non-empty list of {{role, content}} objects, got {quote(messages, 60)}")
    chars = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES or not isinstance(message.get("content"), str):
            raise _BadRow(f"messages[{index}] must be {{\"role\": one of {', '.join(CHAT_ROLES)}, \"content\": a string}}, "
                          f"got {quote(message, 60)}")
        _check_text(f"messages[{index}].content", message["content"])
        chars += len(message["content"])
    if not any(message["role"] == "assistant" for message in messages):
        raise _BadRow("`messages` has no assistant message to learn from")
    return chars


def _check_text(key: str, value: str) -> None:
    """JSON escapes can smuggle in unpaired surrogates: not text, and PostgreSQL's jsonb refuses them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _BadRow(f"`{key}` holds an unpaired surrogate (\\u{ord(value[exc.start]):04x}); expected Unicode text") from None


@dataclass(frozen=True)
class FileRecord:
    """One record of a data file: its line number (Parquet: its 1-based row number) and parsed value (a CSV record,
    a Parquet row: a dict by column), or `error`. Line 0 is the file as a whole (a Parquet file that is not one)."""

    line: int
    value: object = None
    error: str = ""
    where: str = ""  # the record's place when it is not a line: "row group 0, row 7"

    @property
    def place(self) -> str:
        """Where the record is, as messages name it: "line 7", "row group 0, row 7", or "" for the whole file."""
        return self.where or (f"line {self.line}" if self.line else "")


def read_records(path: Path) -> Iterator[FileRecord]:
    """Every record of a .jsonl, .csv or .parquet data file in order, streamed; blank lines are skipped.

    The one parser of hosted data files: validation, data reports and eval suites read rows through it.
    A file whose header, syntax or encoding is unreadable ends with one record naming the problem.
    """
    with open(path, "rb") as handle:
        yield from records_of(handle, path.name)


def records_of(handle: BinaryIO, name: str) -> Iterator[FileRecord]:
    """`read_records` for an open binary stream of the data file `name` (its suffix says the format). Parquet keeps
    its footer at the end: a stream that cannot seek is first spooled to a temporary file (on disk, not memory)."""
    lowered = name.lower()
    if lowered.endswith(".jsonl"):
        yield from _jsonl_records(handle)
    elif lowered.endswith(".parquet"):
        if handle.seekable():
            yield from _parquet_records(handle)
        else:
            with tempfile.TemporaryFile() as spooled:
                shutil.copyfileobj(handle, spooled, 1 << 20)
                spooled.seek(0)
                yield from _parquet_records(spooled)
    else:
        yield from _csv_records(handle)


def parquet_columns(handle: BinaryIO) -> dict[str, str]:
    """Column name -> its Arrow type as people read it (`string`, `list<struct<role: string, ...>>`), from a
    Parquet file's footer; raises EngineInputError when the stream is not a Parquet file."""
    return {f.name: _type_name(f.type) for f in _parquet_file(handle).schema_arrow}


def _parquet_file(handle: BinaryIO) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise EngineInputError(f"not a Parquet file ({str(exc)[:160]})") from None


def _parquet_records(handle: BinaryIO) -> Iterator[FileRecord]:
    """Rows batch by batch, one row group at a time (iter_batches), as plain JSON-like values."""
    try:
        parquet = _parquet_file(handle)
    except EngineInputError as exc:
        yield FileRecord(0, error=str(exc))
        return
    problem = _schema_problem(parquet.schema_arrow)
    if problem:
        yield FileRecord(0, error=problem)
        return
    number = 0
    for group in range(parquet.num_row_groups):
        meta = parquet.metadata.row_group(group)
        if meta.total_byte_size > MAX_ROW_GROUP_BYTES:
            yield FileRecord(number + 1, error=f"holds {meta.total_byte_size} bytes uncompressed, over the "
                             f"{MAX_ROW_GROUP_BYTES} bytes a row group may hold; write smaller row groups "
                             "(row_group_size)", where=f"row group {group}")
            number += meta.num_rows
            continue
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]):
                for row in batch.to_pylist():
                    number += 1
                    yield FileRecord(number, _plain(row), where=f"row group {group}, row {number}")
        except (pa.ArrowException, OSError, ValueError) as exc:
            yield FileRecord(number + 1, error=f"unreadable Parquet data ({str(exc)[:120]}); stopped reading this file",
                             where=f"row group {group}")
            return


def _schema_problem(schema: pa.Schema) -> str:
    """What is wrong with a Parquet file's columns for a dataset ("" when nothing): every column must hold text,
    numbers, booleans, dates, or lists and structs of them; binary, map and extension types are refused."""
    names = schema.names
    if len(set(names)) != len(names) or "" in names:
        return f"the columns {names[:10]} have empty or repeated names"
    for column in schema:
        if not _plain_type(column.type):
            return (f"column `{column.name}` has Arrow type {_type_name(column.type)}; expected text, numbers, "
                    "booleans, dates, or lists and structs of them")
    return ""


def _plain_type(kind: pa.DataType) -> bool:
    if isinstance(kind, pa.BaseExtensionType):
        return False
    if pa.types.is_dictionary(kind) or _is_list(kind):
        return _plain_type(kind.value_type)
    if pa.types.is_struct(kind):
        return all(_plain_type(kind.field(i).type) for i in range(kind.num_fields))
    return any(check(kind) for check in (
        pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view, pa.types.is_integer,
        pa.types.is_floating, pa.types.is_boolean, pa.types.is_null, pa.types.is_timestamp, pa.types.is_date,
        pa.types.is_time, pa.types.is_duration, pa.types.is_decimal))


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _type_name(kind: pa.DataType) -> str:
    """An Arrow type as people read it: lists and structs by their items, without Arrow's `element:` labels."""
    if pa.types.is_dictionary(kind):
        return _type_name(kind.value_type)
    if _is_list(kind):
        return f"list<{_type_name(kind.value_type)}>"
    if pa.types.is_struct(kind):
        return "struct<" + ", ".join(f"{kind.field(i).name}: {_type_name(kind.field(i).type)}"
                                     for i in range(kind.num_fields)) + ">"
    return "string" if pa.types.is_large_string(kind) or pa.types.is_string_view(kind) else str(kind)


def _plain(value: Any) -> Any:
    """A Parquet value as the JSON-like value a JSONL row would hold: dates and decimals become strings."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta | decimal.Decimal):
        return str(value)
    return value


def _jsonl_records(handle: BinaryIO) -> Iterator[FileRecord]:
    for line_number, raw in _lines(handle):
        if raw is None:
            yield FileRecord(line_number, error=f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield FileRecord(line_number, error=f"line is not UTF-8 (byte {exc.start})")
            continue
        text = text.removeprefix("\ufeff") if line_number == 1 else text
        if not text.strip():
            continue
        try:
            yield FileRecord(line_number, json.loads(text, parse_constant=_reject_constant))
        except (ValueError, RecursionError) as exc:
            yield FileRecord(line_number, error=f"line is not one JSON value ({str(exc)[:120]})")


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; None for a line over MAX_LINE_BYTES, which is skipped, not read."""
    number = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, line


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _csv_records(handle: BinaryIO) -> Iterator[FileRecord]:
    text = _Utf8Lines(handle)
    reader = csv.reader(text, strict=True)
    last_line = 0
    try:
        header = next(reader, None)
        if header is None:
            return
        _csv_format(header)
        last_line = reader.line_num
        for record in reader:
            line, last_line = last_line + 1, reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                yield FileRecord(line, error=f"record has {len(record)} fields but the header has {len(header)}")
                continue
            yield FileRecord(line, dict(zip(header, record, strict=True)))
    except _BadRow as exc:
        yield FileRecord(1, error=str(exc))
    except (csv.Error, UnicodeDecodeError) as exc:
        yield FileRecord(last_line + 1, error=f"unreadable CSV ({str(exc)[:120]}); stopped reading this file")


class _Utf8Lines:
    """Decode a binary file line by line, refusing lines over MAX_LINE_BYTES, for csv.reader."""

    def __init__(self, handle: BinaryIO) -> None:
        self._lines = _lines(handle)

    def __iter__(self) -> Iterator[str]:
        for number, raw in self._lines:
            if raw is None:
                raise csv.Error(f"line {number} is longer than {MAX_LINE_BYTES} bytes")
            text = raw.decode("utf-8")
            yield text.removeprefix("\ufeff") if number == 1 else text


def _csv_format(header: list[str]) -> str:
    columns = set(header)
    if len(columns) != len(header) or "" in columns:
        raise _BadRow(f"the header {header[:10]} has empty or repeated column names")
    if "messages" in columns or "choices" in columns:
        raise _BadRow("chat (`messages`) and multiple-choice (`choices`) rows need JSONL; CSV holds instruction "
                      "(prompt, response) or text rows")
    formats = [name for name in ("instruction", "text") if set(FORMAT_FIELDS[name]) <= columns]
    if len(formats) != 1:
        raise _BadRow(f"the header has columns {header[:10]}; expected either prompt and response, or text")
    return formats[0]


def _splits(card: Card | None, data_files: list[str]) -> dict[str, list[str]]:
    """Split name -> its files: from the card's `splits:` mapping when present, else from the file names."""
    declared = card.front_matter.get("splits") if card is not None else None
    if declared is None:
        splits: dict[str, list[str]] = {}
        for name in data_files:
            match = SPLIT_FILE.fullmatch(name)
            splits.setdefault(match["split"].lower() if match else "unsplit", []).append(name)
        return splits
    if not isinstance(declared, dict) or not declared:
        raise EngineInputError("must map split names to a file or a list of files, e.g. {train: train.jsonl}",
                               file=CARD, field="splits", code="card_field")
    splits = {}
    for split, files in declared.items():
        files = [files] if isinstance(files, str) else files
        if not isinstance(split, str) or not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise EngineInputError(f"split {split!r} must name a file or a list of files", file=CARD, field="splits",
                                   code="card_field")
        missing = [name for name in files if name not in data_files]
        if missing:
            raise EngineInputError(f"split {split!r} names {', '.join(missing)}, which is not among the data files "
                                   f"({', '.join(data_files) or 'none'})", file=CARD, field="splits", code="card_field")
        splits[split] = files
    return splits


def _describe_splits(splits: dict[str, list[str]]) -> str:
    return "; ".join(f"{split}: {', '.join(files)}" for split, files in splits.items()) or "no data files"


def _dataset_stats(scans: dict[str, _FileScan]) -> dict[str, Any]:
    files = {}
    for name, scan in scans.items():
        low, total, high = scan.lengths
        files[name] = {
            "format": scan.format, "rows": scan.rows, "malformed_rows": scan.error_count, "duplicates": scan.duplicates,
            "chars": {"min": low, "mean": total / scan.rows if scan.rows else 0.0, "max": high}, "preview": scan.preview,
        }
    rows = sum(scan.rows for scan in scans.values())
    counted = [scan for scan in scans.values() if scan.rows]
    return {
        "files": files,
        "rows": rows,
        "duplicates": sum(scan.duplicates for scan in scans.values()),
        "chars": {
            "min": min((scan.lengths[0] for scan in counted), default=0),
            "mean": sum(scan.lengths[1] for scan in counted) / rows if rows else 0.0,
            "max": max((scan.lengths[2] for scan in counted), default=0),
        },
    }


def _preview(row: dict[str, Any]) -> dict[str, Any]:
    """A short, JSON-safe copy of a row's format fields for the upload page."""
    if "messages" in row:
        return {"messages": [{"role": message["role"], "content": _clip(message["content"])}
                             for message in row["messages"][:PREVIEW_MESSAGES]]}
    if "choices" in row:
        return {key: [_clip(c) for c in value] if key == "choices" else value if key == "answer" else _clip(value)
                for key, value in row.items()}
    return {key: _clip(value) for key, value in row.items()}


def _clip(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def task_row(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """One validated dataset row as an evaluation item of the engine's task suites (`evals.tasks.task_suite`):
    multiple choice from a row with choices, generation (scored by exact match) from an instruction or chat
    row (its conversation up to the reply, formatted when the suite runs). Text rows are not tasks."""
    item: dict[str, Any] = {"id": row["id"]} if "id" in row else {}
    if "choices" in row:
        try:
            answer = choice_answer(row)
        except _BadRow as exc:  # a version validated before multiple-choice rows were checked
            raise EngineInputError(f"row {index}: {exc}") from None
        return {**item, "question": row.get("question") or row.get("prompt", ""), "context": row.get("context", ""),
                "choices": row["choices"], "answer": answer}
    if isinstance(row.get("messages"), list) and row["messages"]:
        # The prompt is rendered when the suite runs, for the evaluated model (`workers.engine.prompts.row_prompt`).
        shape, problem = row_format({"messages": row["messages"]})
        if shape != "chat":
            raise EngineInputError(f"row {index}: {problem}")
        asked, reply = chat_turns(row["messages"])
        return {**item, "messages": [*asked, reply], "answer": reply["content"]}
    if "prompt" in row:
        return {**item, "prompt": row["prompt"], "answer": row.get("answer", row.get("response"))}
    raise EngineInputError(f"row {index} has no question and answer to score: text rows make no task suite")

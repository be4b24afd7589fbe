"""Parquet datasets through the engine's one parser: the JSONL/CSV row rules, places named by row group and row,
files that are not Parquet, refused column types, and streams that cannot seek."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.engine import datasets
from workers.engine.datareport import data_report
from workers.engine.datasets import parquet_columns, read_records, records_of, validate_dataset

CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def write(folder: Path, name: str, table: pa.Table, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name, **kwargs)
    return folder / name


def rows_messages(folder: Path) -> list[str]:
    return [c.message for c in validate_dataset(folder).check("dataset.rows")]


def test_parquet_rows_of_every_format_validate_with_stats_and_splits(tmp_path: Path) -> None:
    write(tmp_path, "train.parquet", pa.table({"prompt": [f"q{i}" for i in range(5)],
                                               "response": [f"a{i}" for i in range(5)]}), row_group_size=2)
    write(tmp_path, "eval.parquet", pa.table({"messages": [CHAT, CHAT]}))
    write(tmp_path, "test.parquet", pa.table({"question": ["2+2?"], "choices": [["3", "4"]], "answer": [1]}))
    report = validate_dataset(tmp_path)
    assert report.ok, report.failures
    files = report.stats["files"]
    assert {name: (f["format"], f["rows"]) for name, f in files.items()} == {
        "eval.parquet": ("chat", 2), "test.parquet": ("multiple_choice", 1), "train.parquet": ("instruction", 5)}
    assert files["eval.parquet"]["duplicates"] == 1  # the same rules as JSONL: duplicates counted across row groups
    assert report.stats["splits"] == {"eval": ["eval.parquet"], "test": ["test.parquet"], "train": ["train.parquet"]}
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_bad_parquet_row_is_named_by_row_group_row_and_column(tmp_path: Path) -> None:
    write(tmp_path, "train.parquet", pa.table({"prompt": ["q1", "q2", "q3", None], "response": ["a", "b", "", "d"]}),
          row_group_size=2)
    report = validate_dataset(tmp_path)
    assert not report.ok
    assert [(c.message, c.field) for c in report.check("dataset.rows")] == [
        ('train.parquet row group 1, row 3: `response` must be a non-empty string, got ""', "row group 1, row 3"),
        ("train.parquet row group 1, row 4: `prompt` must be a non-empty string, got null", "row group 1, row 4"),
    ]


@pytest.mark.parametrize("damage", ["truncated", "not parquet", "empty"])
def test_a_file_that_is_not_parquet_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    good = write(tmp_path / "src", "x.parquet", pa.table({"text": ["some text"] * 50})).read_bytes()
    data = {"truncated": good[: len(good) // 2], "not parquet": b'{"text": "jsonl in disguise"}\n', "empty": b""}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.parquet").write_bytes(data[damage])
    [message] = rows_messages(tmp_path / "data")
    assert message.startswith("train.parquet: not a Parquet file (")


def test_columns_of_binary_or_extension_types_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "bin", "train.parquet", pa.table({"text": ["ok"], "blob": pa.array([b"\x80\x04"], pa.binary())}))
    assert rows_messages(tmp_path / "bin") == [
        "train.parquet: column `blob` has Arrow type binary; expected text, numbers, booleans, dates, or lists and "
        "structs of them"]
    uuid = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([b"0" * 16], pa.binary(16)))
    write(tmp_path / "ext", "train.parquet", pa.table({"text": ["ok"], "id": uuid}))
    [message] = rows_messages(tmp_path / "ext")
    assert message.startswith("train.parquet: column `id` has Arrow type")


def test_a_row_group_over_the_limit_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "train.parquet", pa.table({"text": ["x" * 400, "y" * 400, "z"]}), row_group_size=2)
    monkeypatch.setattr(datasets, "MAX_ROW_GROUP_BYTES", 300)
    [big, rest] = list(read_records(tmp_path / "train.parquet"))
    assert big.place == "row group 0" and "over the 300 bytes a row group may hold" in big.error
    assert (rest.place, rest.value) == ("row group 1, row 3", {"text": "z"})  # row numbers count the skipped group


def test_records_of_reads_parquet_from_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    path = write(tmp_path, "train.parquet", pa.table({"prompt": ["q"], "response": ["a"], "when": [
        pa.scalar(1_700_000_000, pa.timestamp("s")).as_py()]}))

    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    stream = io.BufferedReader(OneWay(path.read_bytes()))
    assert not stream.seekable()
    [record] = list(records_of(stream, "train.parquet"))
    assert record.value == {"prompt": "q", "response": "a", "when": "2023-11-14T22:13:20"}  # JSON-like values


def test_parquet_columns_names_the_declared_types(tmp_path: Path) -> None:
    path = write(tmp_path, "train.parquet", pa.table({"messages": [CHAT], "score": pa.array([0.5], pa.float32())}))
    with open(path, "rb") as handle:
        assert parquet_columns(handle) == {"messages": "list<struct<role: string, content: string>>",
                                           "score": "float"}


def test_parquet_is_read_a_row_group_at_a_time(tmp_path: Path) -> None:
    """Arrow's memory pool and Python's heap stay far below the file's decoded size (in a fresh interpreter, so the
    pool's peak is this validation's)."""
    rows = 100
    with pq.ParquetWriter(tmp_path / "train.parquet", pa.schema([("text", pa.string())])) as writer:
        for group in range(40):
            writer.write_table(pa.table({"text": [f"{group}-{i} " + "x" * 10_000 for i in range(rows)]}))
    decoded = pq.ParquetFile(tmp_path / "train.parquet").metadata.num_rows * 10_000
    probe = f"""
import json, tracemalloc
import pyarrow as pa
from workers.engine.datasets import validate_dataset
tracemalloc.start()
report = validate_dataset({str(tmp_path)!r})
print(json.dumps([report.ok, report.stats["rows"], tracemalloc.get_traced_memory()[1],
                  pa.default_memory_pool().max_memory()]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    ok, counted, python_peak, arrow_peak = json.loads(done.stdout.strip().splitlines()[-1])
    assert ok and counted == 40 * rows
    assert python_peak < decoded / 4 and arrow_peak < decoded / 4, (python_peak, arrow_peak, decoded)  # whole: > 1x


def test_data_reports_read_parquet_through_the_same_parser(tmp_path: Path) -> None:
    write(tmp_path, "train.parquet", pa.table({"prompt": ["mail ann@example.com", "q2"], "response": ["a", "b"]}))
    write(tmp_path, "test.parquet", pa.table({"prompt": ["mail ann@example.com"], "response": ["a"]}))
    report = data_report(tmp_path, {"train": ["train.parquet"], "test": ["test.parquet"]})
    assert report["files"]["train.parquet"]["formats"] == {"instruction": 2}
    [leak] = report["leakage"]
    assert (leak["split"], leak["train"], leak["exact"]) == ("test", "train", 1)  # the held-out row is a train row

"""validate_dataset on real JSONL/CSV files: row formats, line numbers, stats, splits, and streaming."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from tests.engine.bad_uploads import build_good_dataset, write_jsonl
from workers.engine.checks import CARD, ValidationReport
from workers.engine.datasets import DATASET_CHECKS, PREVIEW_CHARS, validate_dataset
from workers.engine.tiny import write_card


def rows_checks(report: ValidationReport, file: str) -> list[str]:
    return [check.message for check in report.check("dataset.rows") if check.file == file]


def test_good_dataset_passes_with_stats(tmp_path: Path) -> None:
    report = validate_dataset(build_good_dataset(tmp_path))

    assert report.ok, report.failures
    assert [check.name for check in report.checks] == [
        "files.required", "files.unexpected", "files.size", "dataset.rows", "dataset.rows", "dataset.rows",
        "card.front_matter", "card.license", "card.fields", "dataset.splits",
    ]
    assert {check.name for check in report.checks} == set(DATASET_CHECKS)
    stats = report.stats
    assert {name: (f["format"], f["rows"]) for name, f in stats["files"].items()} == {
        "eval.jsonl": ("chat", 4), "test.csv": ("text", 2), "train.jsonl": ("instruction", 12)}
    assert stats["rows"] == 18 and stats["duplicates"] == 0
    assert stats["splits"] == {"eval": ["eval.jsonl"], "test": ["test.csv"], "train": ["train.jsonl"]}
    assert stats["license"] == "cc-by-4.0" and stats["task"] == "text-generation"
    assert stats["files"]["train.jsonl"]["preview"][1] == {"prompt": "What is 1 + 1?", "response": "2"}
    assert len(stats["files"]["train.jsonl"]["preview"]) == 5
    json.dumps(report.to_dict(), allow_nan=False)


def test_length_stats_and_duplicates(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", [{"text": "aaaa"}, {"text": "bb"}, {"text": "aaaa", "id": 2}, {"text": "bb"}])

    stats = validate_dataset(tmp_path).stats

    assert stats["files"]["data.jsonl"]["chars"] == {"min": 2, "mean": 3.0, "max": 4}
    assert stats["duplicates"] == 2  # metadata fields do not make a row distinct
    assert stats["splits"] == {"unsplit": ["data.jsonl"]}


def test_every_malformed_row_is_reported_up_to_the_limit(tmp_path: Path) -> None:
    lines = ['{"text": "ok"}'] + ['{"text": ""}'] * 30
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")

    report = validate_dataset(tmp_path, max_reported_errors=5)

    messages = rows_checks(report, "train.jsonl")
    assert messages[:2] == ["train.jsonl line 2: `text` must be a non-empty string, got \"\"",
                            "train.jsonl line 3: `text` must be a non-empty string, got \"\""]
    assert len(messages) == 6 and messages[-1] == "train.jsonl: and 25 more malformed rows"
    assert [check.field for check in report.failures][:5] == [f"line {n}" for n in range(2, 7)]
    assert report.stats["files"]["train.jsonl"]["malformed_rows"] == 30


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "fine"}])
    (tmp_path / "test.csv").write_text("prompt,response\nq,\n")

    report = validate_dataset(tmp_path)

    assert rows_checks(report, "train.jsonl") == ["train.jsonl: 1 rows in text format"]
    assert rows_checks(report, "test.csv") == ["test.csv line 2: `response` must be a non-empty string, got \"\""]


def test_csv_line_numbers_follow_multiline_records_and_bom(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes('\ufeffprompt,response\n"multi\nline",ok\nq,\n'.encode())

    report = validate_dataset(tmp_path)

    assert rows_checks(report, "train.csv") == ["train.csv line 4: `response` must be a non-empty string, got \"\""]


def test_blank_lines_and_a_bom_in_jsonl_are_fine(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_bytes('\ufeff{"text": "a"}\n\n{"text": "b"}\n  \n'.encode())
    report = validate_dataset(tmp_path)
    assert report.ok and report.stats["rows"] == 2


def test_card_splits_override_file_names(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a"}])
    write_jsonl(tmp_path / "b.jsonl", [{"text": "b"}])
    write_card(tmp_path / CARD, {"license": "mit", "splits": {"train": ["a.jsonl"], "test": "b.jsonl"}})

    report = validate_dataset(tmp_path)

    assert report.ok and report.stats["splits"] == {"train": ["a.jsonl"], "test": ["b.jsonl"]}


def test_preview_clips_long_text(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"messages": [{"role": "user", "content": "q" * 1000},
                                                         {"role": "assistant", "content": "a"}]}])
    preview = validate_dataset(tmp_path).stats["files"]["train.jsonl"]["preview"][0]
    assert len(preview["messages"][0]["content"]) == PREVIEW_CHARS


@pytest.mark.parametrize(("header", "fragment"), [
    ("messages\n", "need JSONL"),
    ("prompt,response,text\n", "expected either prompt and response, or text"),
    ("text,text\n", "repeated column names"),
])
def test_csv_headers(header: str, fragment: str, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(header + "x\n")
    (message,) = rows_checks(validate_dataset(tmp_path), "train.csv")
    assert fragment in message


def test_files_are_streamed_not_loaded(tmp_path: Path) -> None:
    with open(tmp_path / "train.jsonl", "w") as handle:
        for i in range(100):
            handle.write(json.dumps({"text": f"{i} " + "x" * 100_000}) + "\n")
    size = (tmp_path / "train.jsonl").stat().st_size

    tracemalloc.start()
    try:
        report = validate_dataset(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert report.ok and report.stats["rows"] == 100
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte file"


def test_multiple_choice_rows_are_a_format_of_their_own(tmp_path: Path) -> None:
    """The rows evaluations score as multiple choice are accepted at upload: one home for row shapes."""
    rows = [{"question": "Capital of France?", "choices": ["Rome", "Paris"], "answer": 1},
            {"context": "The sky is", "choices": ["blue", "green", "loud"], "answer": 0},
            {"prompt": "2 + 2 =", "response": "4", "choices": ["3", "4"]}]  # the answer named by its text
    folder = tmp_path / "mc"
    folder.mkdir()
    write_jsonl(folder / "eval.jsonl", rows)
    write_card(folder / CARD, {"license": "cc-by-4.0"})
    report = validate_dataset(folder)
    assert report.ok, report.failures
    assert report.stats["files"]["eval.jsonl"]["format"] == "multiple_choice"
    assert report.stats["files"]["eval.jsonl"]["preview"][0] == rows[0]


@pytest.mark.parametrize(("row", "fragment"), [
    ({"question": "q", "choices": ["only one"], "answer": 0}, "`choices` must be a list of at least two non-empty strings"),
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, "`answer` must be the index of the right choice, 0 to 1"),
    ({"question": "q", "choices": ["a", "b"], "answer": True}, "`answer` must be the index of the right choice"),
    ({"question": "q", "choices": ["a", "b"], "response": "c"}, "(or `response` one of the choices)"),
    ({"question": " ", "choices": ["a", "b"], "answer": 0}, "needs a non-empty `question` (or `prompt`) or `context`"),
    ({"question": 3, "choices": ["a", "b"], "answer": 0}, "`question` must be a string"),
])
def test_bad_multiple_choice_rows_are_named(row: dict, fragment: str, tmp_path: Path) -> None:
    folder = tmp_path / "mc"
    folder.mkdir()
    write_jsonl(folder / "eval.jsonl", [{"question": "fine", "choices": ["a", "b"], "answer": 0}, row])
    write_card(folder / CARD, {"license": "cc-by-4.0"})
    messages = rows_checks(validate_dataset(folder), "eval.jsonl")
    assert len(messages) == 1 and messages[0].startswith("eval.jsonl line 2: ") and fragment in messages[0], messages


"""Every bad upload in the corpus goes through the worker's entry point and is rejected by the right check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.bad_uploads import BAD_UPLOADS, BadUpload, build_good_dataset, tiny_base_models, zipped
from workers.engine.checks import ValidationReport
from workers.engine.validation import validate_upload


@pytest.fixture(scope="module")
def base_models(tiny_base: Path) -> dict:
    return tiny_base_models(tiny_base)


@pytest.fixture(scope="module")
def good_uploads(make_adapter, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"adapter": make_adapter(), "dataset": build_good_dataset(tmp_path_factory.mktemp("good"))}


def describe(report: ValidationReport) -> str:
    return "\n".join(f"{check.name}: {check.message}" for check in report.failures) or "(no failures)"


def test_the_corpus_is_broad_and_distinct() -> None:
    names = [bad.name for bad in BAD_UPLOADS]
    assert len(names) == len(set(names))
    assert len(BAD_UPLOADS) >= 30
    assert {bad.kind for bad in BAD_UPLOADS} == {"adapter", "dataset"}


@pytest.mark.parametrize("bad", BAD_UPLOADS, ids=lambda bad: bad.name)
def test_bad_upload_is_rejected_by_its_check(bad: BadUpload, tmp_path: Path, base_models: dict,
                                             good_uploads: dict[str, Path]) -> None:
    source = bad.build(tmp_path, good_uploads[bad.kind])
    work = tmp_path / "work"
    work.mkdir()

    report = validate_upload(source, bad.kind, base_models, work_dir=work, **bad.options)

    assert not report.ok
    assert any(check.name == bad.check and bad.fragment in check.message for check in report.failures), describe(report)
    stored = json.loads(json.dumps(report.to_dict(), allow_nan=False))  # what the hub stores must be strict JSON
    assert ValidationReport.from_dict(stored) == report
    assert not list(work.iterdir()), "an unpacked archive was left behind"
    # the same entry point, right after, still accepts a good upload of that kind
    good = validate_upload(good_uploads[bad.kind], bad.kind, base_models, work_dir=work)
    assert good.ok, describe(good)


@pytest.mark.parametrize("kind", ["adapter", "dataset"])
@pytest.mark.parametrize("wrap", ["", "my-upload"])
def test_good_upload_passes_as_folder_and_as_archive(kind: str, wrap: str, tmp_path: Path, base_models: dict,
                                                     good_uploads: dict[str, Path]) -> None:
    archive = zipped(wrap=wrap)(tmp_path, good_uploads[kind])
    for source in (good_uploads[kind], archive):
        report = validate_upload(source, kind, base_models)
        assert report.ok, describe(report)
        assert not any(check.skipped for check in report.checks if check.name.startswith(("config.", "weights.")))

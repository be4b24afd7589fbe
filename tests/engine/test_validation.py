"""validate_adapter and the card parser on real tiny-factory adapters (the failing side of every check is in the corpus)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tests.engine.bad_uploads import BAD_UPLOADS, copy_upload, tiny_base_models, with_config
from workers.engine.cards import KNOWN_LICENSES, card_base_models, card_license, check_card_fields, parse_card
from workers.engine.datasets import DATASET_CHECKS
from workers.engine.errors import EngineInputError
from workers.engine.safetensors_io import SafetensorsStreamWriter, TensorSpec
from workers.engine.tiny import TINY_BASE_NAME
from workers.engine.validation import (
    ADAPTER_CHECKS,
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD,
    FINITE_CHUNK,
    Check,
    ValidationReport,
    validate_adapter,
)


@pytest.fixture(scope="module")
def base_models(tiny_base: Path) -> dict:
    return tiny_base_models(tiny_base)


@pytest.fixture(scope="module")
def adapter(make_adapter) -> Path:
    return make_adapter()


def by_name(report: ValidationReport, name: str) -> Check:
    (check,) = report.check(name)
    return check


def test_good_adapter_passes_every_check_in_order(adapter: Path, base_models: dict) -> None:
    report = validate_adapter(adapter, base_models=base_models)

    assert report.ok, report.failures
    assert tuple(check.name for check in report.checks) == ADAPTER_CHECKS
    assert all(check.passed and not check.skipped for check in report.checks)


def test_every_check_has_a_bad_upload_that_fails_it() -> None:
    assert set(ADAPTER_CHECKS) | set(DATASET_CHECKS) <= {bad.check for bad in BAD_UPLOADS}


def test_stats_describe_the_adapter(adapter: Path, base_models: dict) -> None:
    stats = validate_adapter(adapter, base_models=base_models).stats
    tensors = load_file(adapter / ADAPTER_WEIGHTS)

    assert stats["rank"] == 4 and stats["alpha"] == 8 and stats["scale"] == 2.0 and stats["use_rslora"] is False
    assert stats["target_modules"] == ["q_proj", "v_proj"]
    assert stats["base_model"] == TINY_BASE_NAME and stats["license"] == "apache-2.0" and stats["tags"] == ["lora"]
    assert stats["trainable_parameters"] == sum(t.size for t in tensors.values())
    assert stats["file_bytes"] == (adapter / ADAPTER_WEIGHTS).stat().st_size
    assert stats["dtypes"] == ["F32"] and stats["modules"] == 4 and stats["tensor_count"] == 8
    json.dumps(stats, allow_nan=False)


def test_delta_norms_equal_the_materialized_product(adapter: Path, base_models: dict) -> None:
    norms = validate_adapter(adapter, base_models=base_models).stats["delta_norms"]
    tensors = load_file(adapter / ADAPTER_WEIGHTS)

    assert len(norms) == 4
    for module, norm in norms.items():
        prefix = f"base_model.model.{module}"
        delta = 2.0 * tensors[f"{prefix}.lora_B.weight"].astype(np.float64) @ tensors[f"{prefix}.lora_A.weight"]
        assert norm == pytest.approx(np.linalg.norm(delta), rel=1e-9)


def test_rslora_scale_is_alpha_over_sqrt_rank(make_adapter, base_models: dict) -> None:
    stats = validate_adapter(make_adapter(rank=8, alpha=16, use_rslora=True), base_models=base_models).stats
    assert stats["use_rslora"] is True
    assert stats["scale"] == pytest.approx(16 / math.sqrt(8))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_dtypes_pass_with_the_same_norms(dtype: type, adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    save_file({k: v.astype(dtype) for k, v in load_file(adapter / ADAPTER_WEIGHTS).items()}, folder / ADAPTER_WEIGHTS)
    expected = validate_adapter(adapter, base_models=base_models).stats["delta_norms"]

    report = validate_adapter(folder, base_models=base_models)

    assert report.ok, report.failures
    for module, norm in report.stats["delta_norms"].items():
        assert norm == pytest.approx(expected[module], rel=1e-2)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """Write (dtype name, raw array) pairs with the engine's own writer; BF16 arrays are uint16 bit patterns."""
    specs = [TensorSpec(name, dtype, values.shape) for name, (dtype, values) in tensors.items()]
    with SafetensorsStreamWriter(path, specs) as writer:
        for name, (_, values) in tensors.items():
            writer.write(name, values)


def test_bf16_factors_pass_with_the_same_norms(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    bits = {k: (v.view(np.uint32) >> 16).astype(np.uint16) for k, v in load_file(adapter / ADAPTER_WEIGHTS).items()}
    write_safetensors(folder / ADAPTER_WEIGHTS, {k: ("BF16", v) for k, v in bits.items()})
    expected = validate_adapter(adapter, base_models=base_models).stats["delta_norms"]

    report = validate_adapter(folder, base_models=base_models)

    assert report.ok, report.failures
    assert report.stats["dtypes"] == ["BF16"]
    for module, norm in report.stats["delta_norms"].items():
        assert norm == pytest.approx(expected[module], rel=2e-2)


def test_the_finite_scan_reads_big_factors_in_chunks(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    tensors = {k: ("F32", v) for k, v in load_file(adapter / ADAPTER_WEIGHTS).items()}
    big = np.zeros((FINITE_CHUNK // 64 + 1, 64), np.float32)  # one chunk and one row
    big[0, 0], big[-1, -1] = np.inf, np.nan
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[name] = ("F32", big)
    write_safetensors(folder / ADAPTER_WEIGHTS, tensors)

    report = validate_adapter(folder, base_models=base_models)

    assert by_name(report, "weights.finite").message == f"{name} has 1 NaN and 1 infinite values; expected finite numbers"
    assert "model.layers.0.self_attn.q_proj" not in report.stats["delta_norms"]
    assert len(report.stats["delta_norms"]) == 3


def test_failed_prerequisites_skip_later_checks_with_a_reason(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    (folder / ADAPTER_CONFIG).unlink()

    report = validate_adapter(folder, base_models=base_models)

    assert [check.name for check in report.failures] == ["files.required"]
    assert tuple(check.name for check in report.checks) == ADAPTER_CHECKS  # nothing silently left out
    skipped = {check.name: check.message for check in report.checks if check.skipped}
    assert skipped["config.rank"] == f"skipped: {ADAPTER_CONFIG} is unusable"
    assert "weights.shapes" in skipped and "weights.rank" in skipped
    assert by_name(report, "weights.finite").passed  # what does not need the config still ran


def test_several_problems_are_reported_at_once(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = with_config(r=0, use_dora=True, lora_alpha=-1)(tmp_path, adapter)
    (folder / "notes.txt").write_text("hi")

    failed = {check.name for check in validate_adapter(folder, base_models=base_models).failures}

    assert failed == {"files.unexpected", "config.rank", "config.alpha", "config.features"}


def test_pickles_are_never_opened(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    marker = tmp_path / "pwned"
    # a pickle that runs a shell command when loaded: os.system("touch <marker>")
    (folder / "adapter_model.bin").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())

    report = validate_adapter(folder, base_models=base_models)

    assert "adapter_model.bin is a pickle file" in by_name(report, "files.pickle").message
    assert not marker.exists()


def test_links_and_folders_are_refused_without_being_followed(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, adapter)
    (folder / ADAPTER_WEIGHTS).rename(tmp_path / "elsewhere.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", folder / ADAPTER_WEIGHTS)
    (folder / "extra").mkdir()

    report = validate_adapter(folder, base_models=base_models)

    assert f"missing {ADAPTER_WEIGHTS}" in by_name(report, "files.required").message
    message = by_name(report, "files.unexpected").message
    assert f"{ADAPTER_WEIGHTS} is a symbolic link" in message and "extra is a folder" in message
    assert by_name(report, "weights.header").skipped


def test_a_chosen_base_overrides_a_local_path_in_the_config(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = with_config(base_model_name_or_path="/home/me/models/tiny")(tmp_path, adapter)
    (folder / CARD).unlink()

    assert not validate_adapter(folder, base_models=base_models).ok
    report = validate_adapter(folder, base_models=base_models, chosen_base=TINY_BASE_NAME)
    assert report.ok, report.failures
    assert report.stats["base_model"] == TINY_BASE_NAME
    assert all(check.skipped for check in report.checks if check.name.startswith("card."))


def test_a_chosen_base_must_exist_and_agree_with_the_config(adapter: Path, base_models: dict) -> None:
    hub = {**base_models, "other/base": base_models[TINY_BASE_NAME]}

    unknown = validate_adapter(adapter, base_models=hub, chosen_base="nobody/model")
    conflicting = validate_adapter(adapter, base_models=hub, chosen_base="other/base")

    assert "'nobody/model' is not on the hub" in by_name(unknown, "config.base_model").message
    assert "they must agree" in by_name(conflicting, "config.base_model").message


def test_target_module_forms(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    all_linear = validate_adapter(with_config(target_modules="all-linear")(tmp_path / "a", adapter), base_models=base_models)
    regex = validate_adapter(with_config(target_modules=r".*\.(q|v)_proj")(tmp_path / "b", adapter), base_models=base_models)

    assert by_name(all_linear, "weights.targets").passed
    assert by_name(regex, "weights.targets").skipped and regex.ok


def test_training_only_config_fields_are_accepted(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = with_config(lora_dropout=0.1, layers_to_transform=[0, 1], init_lora_weights="gaussian",
                         eva_config=None, use_dora=False, rank_pattern={}, modules_to_save=None)(tmp_path, adapter)
    assert validate_adapter(folder, base_models=base_models).ok


def test_report_round_trips_through_json(adapter: Path, base_models: dict, tmp_path: Path) -> None:
    folder = with_config(r=0)(tmp_path, adapter)
    report = validate_adapter(folder, base_models=base_models)

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))

    assert data["ok"] is False and data["kind"] == "adapter"
    assert ValidationReport.from_dict(data) == report
    assert [check.name for check in report.failures] == ["config.rank"]
    assert by_name(report, "weights.rank").skipped


def test_skipped_checks_are_not_failures() -> None:
    report = ValidationReport("adapter", [Check("a", True, "ok"), Check("b", False, "skipped: n/a", skipped=True)])
    assert report.ok and report.failures == []
    assert not ValidationReport("adapter", [Check("a", False, "bad")]).ok


# --- cards -----------------------------------------------------------------------------------------------------------


def test_card_front_matter_and_body() -> None:
    card = parse_card("\ufeff---\nlicense: MIT\nbase_model: [a/b, c/d]\ndatasets: x/y\n---\n# Title\nText\n")

    assert card.front_matter["license"] == "MIT" and card.body == "# Title\nText\n"
    assert card_license(card) == "mit"
    assert card_base_models(card) == ["a/b", "c/d"]
    assert check_card_fields(card) == {"datasets": ["x/y"]}


def test_card_without_front_matter_is_all_body() -> None:
    card = parse_card("# Just a title\n---\nnot front matter\n")
    assert card.front_matter == {} and card.body.startswith("# Just")


@pytest.mark.parametrize(("text", "fragment"), [
    ("---\nlicense: mit\n", "never closed"),
    ("---\na: 1\n  b: 2\n---\n", "at line 3"),
    ("---\n!!python/object:os.system ls\n---\n", "not valid YAML"),
    ("---\n42\n---\n", "got int"),
])
def test_bad_front_matter_is_an_input_error(text: str, fragment: str) -> None:
    with pytest.raises(EngineInputError, match=fragment) as info:
        parse_card(text)
    assert info.value.file == "README.md" and info.value.code == "card_yaml"


@pytest.mark.parametrize(("front_matter", "fragment"), [
    ("license: unknown\n", "not a known license"),
    ("license: other\n", "license_name"),
    ("license: [mit]\n", "not a known license"),
])
def test_license_rules(front_matter: str, fragment: str) -> None:
    with pytest.raises(EngineInputError, match=fragment):
        card_license(parse_card(f"---\n{front_matter}---\n"))


def test_known_licenses_cover_hub_and_spdx_ids() -> None:
    assert {"apache-2.0", "mit", "llama3", "openrail", "other", "cc-by-nc-4.0", "gemma"} <= KNOWN_LICENSES
    assert "unknown" not in KNOWN_LICENSES
    assert card_license(parse_card("---\nlicense: other\nlicense_name: acme-1.0\n---\n")) == "other"


@pytest.mark.parametrize(("front_matter", "field"), [
    ("tags: lora\n", "tags"),
    ("datasets: [1, 2]\n", "datasets"),
    ("task: [a]\n", "task"),
    ("pipeline_tag: ''\n", "pipeline_tag"),
])
def test_card_field_types(front_matter: str, field: str) -> None:
    with pytest.raises(EngineInputError) as info:
        check_card_fields(parse_card(f"---\n{front_matter}---\n"))
    assert info.value.field == field

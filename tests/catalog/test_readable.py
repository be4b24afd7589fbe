"""Readable values: numbers, sizes, metric names, stored JSON, chart ticks, and validation checks in plain words."""

from __future__ import annotations

import re

import pytest
from django.template import engines

from hub.catalog.check_help import checks_for_people, stages_of
from hub.core.formatting import metric_label, readable_bytes, readable_number, signed_number, tick_labels
from hub.evals.charts import line, ticks


@pytest.mark.parametrize(("value", "text"), [
    (1.68e-4, "0.000168"), (0.8745, "0.8745"), (12.345, "12.35"), (1234.5, "1,234"), (8589934592, "8.59 billion"),
    (0, "0"), (-0.0123, "-0.0123"), (135_000_000, "135 million"), (1.0, "1"), (None, "—"), (True, "yes"),
])
def test_numbers_never_show_an_exponent(value, text):
    assert readable_number(value) == text


def test_sizes_signs_and_metric_names():
    assert readable_bytes(8589934592) == "8.59 GB" and readable_bytes(123_456) == "123 KB"
    assert readable_bytes(1) == "1 byte" and readable_bytes(999) == "999 bytes"
    assert signed_number(1.68e-4) == "+0.000168" and signed_number(-0.5) == "−0.5" and signed_number(0.0) == "0"
    assert metric_label("bits_per_byte") == "bits per byte" and metric_label("acc_norm").startswith("accuracy")


def test_close_ticks_are_told_apart_and_a_one_point_trend_is_no_chart():
    values = ticks(0.8741, 0.8749)
    labels = tick_labels(values)
    assert len(set(labels)) == len(labels) > 1  # not 0.8745, 0.8745, …
    svg = line([(1, 0.8741), (2, 0.8749)], x_label="version", y_label="accuracy", title="t")
    y_ticks = re.findall(r'text-anchor="end">([^<]+)<', svg)
    assert len(set(y_ticks)) == len(y_ticks) > 1


def test_stored_json_renders_as_lists_and_tables_not_reprs():
    template = engines["django"].from_string("{{ value|readable }}")
    html = template.render({"value": {"target_modules": ["q_proj", "v_proj"], "use_rslora": False, "scale": None,
                                      "model.layers.0.q_proj": 1.5e-5}})
    assert "[" not in html and "False" not in html and "None" not in html and "e-05" not in html
    assert "q_proj, v_proj" in html and ">no<" in html and "<code>model.layers.0.q_proj</code>" in html
    assert "Target modules" in html and "0.000015" in html


def test_a_renamed_pickle_is_one_failure_with_its_fix():
    report = {"checks": [
        {"name": "files.required", "passed": True, "message": "present", "file": "", "field": "", "skipped": False},
        {"name": "files.pickle", "passed": False, "file": "", "field": "", "skipped": False,
         "message": "adapter_model.safetensors is a Python pickle despite its name, which can run code"},
        {"name": "files.size", "passed": True, "message": "every file is at most 8589934592 bytes", "file": "",
         "field": "", "skipped": False},
        {"name": "weights.header", "passed": False, "file": "adapter_model.safetensors", "field": "", "skipped": False,
         "message": "header length 578712552184433488 is outside 1..104857600 bytes"},
        {"name": "weights.shapes", "passed": False, "file": "adapter_model.safetensors", "field": "", "skipped": False,
         "message": "; ".join(f"m{i} has shape (4, 3); expected (4, 32)" for i in range(60))},
    ]}
    lines = checks_for_people(report)
    assert [line.status for line in lines] == ["failed", "passed", "passed"]
    pickle_line = lines[0]
    assert pickle_line.title == "No pickle files" and "safe_serialization=True" in pickle_line.fix
    assert pickle_line.folded == ["The weights are a readable safetensors file", "Shapes match the base model"]
    assert "8.59 GB" in lines[2].problems[0]


def test_a_long_list_of_problems_shows_the_first_few_and_a_count():
    message = "; ".join(f"m{i} has shape (4, 3); expected (4, 32)" for i in range(3)) + "; and 57 more"
    [line] = checks_for_people({"checks": [{"name": "weights.shapes", "passed": False, "message": message,
                                             "file": "adapter_model.safetensors", "field": "", "skipped": False}]})
    assert len(line.problems) == 4 and line.more == 2 + 57


def test_stages_stop_where_the_upload_did():
    assert stages_of("validating") == [("Uploaded", "done"), ("Checking", "current"), ("In review", "todo"),
                                       ("Published", "todo")]
    assert stages_of("rejected")[-1] == ("Rejected", "failed")

"""One prompt format for training and evaluation (`workers.engine.prompts.row_prompt`): the same dataset row gives
the same prompt to the trainer and to the task suites, on transformers and on llama.cpp, and an adapter trained on
chat rows is evaluated through its base's chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.engine.datasets import task_row
from workers.engine.errors import EngineInputError
from workers.engine.evals import TransformersBackend, run_suite, task_suite
from workers.engine.prompts import PromptPair, row_prompt
from workers.engine.tiny import TINY_BASE_NAME
from workers.engine.training import IGNORE_INDEX, TrainingSpec, tokenize_rows, train_adapter

CHAT = {"messages": [{"role": "system", "content": "Convert units."}, {"role": "user", "content": "3 km in m?"},
                     {"role": "assistant", "content": "3000"}]}
INSTRUCTION = {"prompt": "Convert 3 km to m:", "response": " 3000"}
CHOICE = {"question": "3 km in m?", "context": "Units.", "choices": ["30", "3000"], "answer": 1}


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


def trained_prompt(tokenizer, row: dict, tmp_path: Path) -> str:
    """The text training puts before the tokens it learns (labels IGNORE_INDEX)."""
    (example,) = tokenize_rows(tokenizer, [write_rows(tmp_path / "row.jsonl", [row])], max_seq_len=256).items
    return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True)
                             if label == IGNORE_INDEX])


def evaluated_prompt(backend, row: dict) -> str:
    """The text a task suite gives the model for the same row (the `input` of its record)."""
    suite = task_suite("task:probe", [task_row(0, row)], max_new_tokens=2)
    (record,) = run_suite(suite, backend)["records"]
    return record["input"]


def test_each_row_shape_has_one_prompt_and_response(tokenizer) -> None:
    templated = row_prompt(CHAT, tokenizer)
    assert templated == PromptPair("<|im_start|>system\nConvert units.<|im_end|>\n<|im_start|>user\n3 km in m?"
                                   "<|im_end|>\n<|im_start|>assistant\n", "3000<|im_end|>\n", ends_turn=True)
    assert row_prompt(CHAT) == PromptPair("system: Convert units.\nuser: 3 km in m?\nassistant:", "3000")
    assert row_prompt(INSTRUCTION, tokenizer) == PromptPair("Convert 3 km to m:", " 3000")
    assert row_prompt(CHOICE, tokenizer) == PromptPair("Units.\nQuestion: 3 km in m?\nAnswer:", " 3000")
    assert row_prompt({"text": "prose"}, tokenizer) == PromptPair("", "prose")
    with pytest.raises(EngineInputError, match="no assistant message"):
        row_prompt({"messages": [{"role": "user", "content": "Hi"}]}, tokenizer)
    with pytest.raises(EngineInputError, match="no assistant message") as caught:
        task_suite("task:bad", [{"messages": [{"role": "user", "content": "Hi"}], "answer": "Hello"}])
    assert caught.value.field == "row 0.messages"


def test_training_and_evaluation_give_the_same_row_the_same_prompt(tiny_base: Path, tokenizer,
                                                                    tmp_path: Path) -> None:
    backend = TransformersBackend(tiny_base)
    assert backend.chat is not None
    for row in (CHAT, INSTRUCTION):
        assert trained_prompt(tokenizer, row, tmp_path) == evaluated_prompt(backend, row) \
            == row_prompt(row, tokenizer).prompt
    mc = task_suite("task:mc", [task_row(0, CHOICE)])
    assert mc.items[0].context == trained_prompt(tokenizer, CHOICE, tmp_path) == row_prompt(CHOICE).prompt
    backend.chat = None  # a model without a chat template: the plain format, as row_prompt gives it
    assert evaluated_prompt(backend, CHAT) == "system: Convert units.\nuser: 3 km in m?\nassistant:"


def test_an_adapter_trained_on_chat_rows_is_evaluated_through_the_chat_template(tiny_base: Path, tokenizer,
                                                                                tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"{n} km in m?"}, {"role": "assistant", "content": f"{n}000"}]}
            for n in range(1, 9)]
    spec = TrainingSpec.from_dict({"lora": {"rank": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
                                   "steps": 4, "learning_rate": 1e-2, "batch_size": 4, "max_seq_len": 64, "seed": 0})
    result = train_adapter(tiny_base, [write_rows(tmp_path / "train.jsonl", rows)], tmp_path / "adapter", spec,
                           base_model_name=TINY_BASE_NAME)
    backend = TransformersBackend(tiny_base, adapters=[result.out_dir])
    suite = task_suite("task:km", [task_row(i, row) for i, row in enumerate(rows)], max_new_tokens=4)
    records = run_suite(suite, backend)["records"]
    for row, record in zip(rows, records, strict=True):
        assert record["input"] == row_prompt(row, tokenizer).prompt == trained_prompt(tokenizer, row, tmp_path)
        assert record["input"].startswith("<|im_start|>user\n") and record["input"].endswith("<|im_start|>assistant\n")
        assert record["answers"] == [row["messages"][-1]["content"]]


def test_the_gguf_backend_renders_the_chat_template_as_transformers_does(tiny_base: Path, tokenizer,
                                                                         tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from workers.engine.evals import GGUFBackend
    from workers.engine.gguf_export import export_gguf

    export_gguf(tiny_base, tmp_path / "tiny-f16.gguf", dtype="f16")
    gguf = GGUFBackend(tmp_path / "tiny-f16.gguf", max_length=64)
    assert gguf.chat is not None
    assert evaluated_prompt(gguf, CHAT) == row_prompt(CHAT, tokenizer).prompt
    assert gguf.chat.apply_chat_template(CHAT["messages"], tokenize=False, add_generation_prompt=False) == \
        tokenizer.apply_chat_template(CHAT["messages"], tokenize=False)

"""The training engine on the tiny model: spec errors, what the loss sees, determinism, checkpoints and resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from workers.engine.errors import EngineInputError
from workers.engine.tiny import TINY_BASE_NAME
from workers.engine.training import (
    IGNORE_INDEX,
    TrainingCancelled,
    TrainingSpec,
    tokenize_rows,
    train_adapter,
)

SPEC = {"lora": {"rank": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}, "steps": 8,
        "learning_rate": 5e-3, "batch_size": 4, "max_seq_len": 48, "seed": 3}
PAIRS = [(f"{n} km in metres:", f" {n * 1000}") for n in range(1, 13)]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "train.jsonl", [{"prompt": p, "response": r} for p, r in PAIRS])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("change", "field"), [
    ({"lora": {"rank": 0}}, "lora.rank"),
    ({"lora": {"rank": True}}, "lora.rank"),
    ({"lora": {"target_modules": []}}, "lora.target_modules"),
    ({"lora": {"colour": 1}}, "lora.colour"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"schedule": "zigzag"}, "schedule"),
    ({"epochs": 2}, "steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"surprise": 1}, "surprise"),
])
def test_spec_errors_name_their_field(change: dict, field: str) -> None:
    spec = {**SPEC, **change}
    if "lora" in change:
        spec["lora"] = {**SPEC["lora"], **change["lora"]}
    with pytest.raises(EngineInputError) as caught:
        TrainingSpec.from_dict(spec)
    assert caught.value.field == field


def test_canonical_spec_fills_defaults_and_sorts_modules() -> None:
    spec = TrainingSpec.from_dict({**SPEC, "lora": {**SPEC["lora"], "target_modules": ["v_proj", "q_proj"]}})
    assert spec.to_dict()["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert TrainingSpec.from_dict(spec.to_dict()) == spec


def test_loss_only_on_answers_and_chat_rows_use_the_template(tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    instruction = write_rows(tmp_path / "a.jsonl", [{"prompt": "Two plus two:", "response": " four"}])
    chat = write_rows(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "Hi"},
                                                            {"role": "assistant", "content": "Hello there"}]}])
    (example,) = tokenize_rows(tokenizer, [instruction], max_seq_len=64).items
    prompt_len = len(tokenizer("Two plus two:", add_special_tokens=False)["input_ids"])
    assert example.labels[:prompt_len] == (IGNORE_INDEX,) * prompt_len
    assert tokenizer.decode(example.labels[prompt_len:]) == " four<|im_end|>"
    (turn,) = tokenize_rows(tokenizer, [chat], max_seq_len=64).items
    learnt = [i for i, label in zip(turn.input_ids, turn.labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(turn.input_ids).startswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.decode(learnt) == "Hello there<|im_end|>\n"

    tokenizer.chat_template = None
    with pytest.raises(EngineInputError, match="chat template") as caught:
        tokenize_rows(tokenizer, [chat], max_seq_len=64)
    assert (caught.value.file, caught.value.field) == ("b.jsonl", "line 1")


def test_a_row_that_leaves_no_answer_is_dropped_and_counted(tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    rows = write_rows(tmp_path / "c.jsonl", [{"prompt": "word " * 40, "response": " yes"},
                                             {"prompt": "Short:", "response": " yes"}])
    examples = tokenize_rows(tokenizer, [rows], max_seq_len=16)
    assert (len(examples.items), examples.dropped) == (1, 1)
    only_long = write_rows(tmp_path / "d.jsonl", [{"prompt": "word " * 40, "response": " yes"}])
    with pytest.raises(EngineInputError, match="no row leaves any answer"):
        tokenize_rows(tokenizer, [only_long], max_seq_len=16)


def test_same_spec_and_seed_give_the_same_adapter_bytes(tiny_base: Path, train_file: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = TrainingSpec.from_dict(SPEC)
    runs = [train_adapter(tiny_base, [train_file], tmp_path / f"out{i}", spec, base_model_name=TINY_BASE_NAME,
                          eval_files=[train_file], card={"dataset": "alice/units@2", "license": "cc0-1.0"})
            for i in range(2)]
    first, second = (r.out_dir for r in runs)
    assert sorted(p.name for p in first.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert sha256(first / name) == sha256(second / name)
    assert runs[0].loss_history == runs[1].loss_history and len(runs[0].loss_history) == 8
    assert runs[0].loss_history[-1][1] < runs[0].loss_history[0][1]  # it learns
    card = (first / "README.md").read_text()
    for fact in ("alice/units@2", TINY_BASE_NAME, "| LoRA rank | 4 |", "| seed | 3 |", "eval loss", "cc0-1.0"):
        assert fact in card
    assert json.loads((first / "adapter_config.json").read_text())["base_model_name_or_path"] == TINY_BASE_NAME
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), first)  # a real PEFT folder

    other = train_adapter(tiny_base, [train_file], tmp_path / "other", TrainingSpec.from_dict({**SPEC, "seed": 4}),
                          base_model_name=TINY_BASE_NAME)
    assert sha256(other.out_dir / "adapter_model.safetensors") != sha256(first / "adapter_model.safetensors")


def test_resumed_run_ends_with_the_same_bytes_as_an_uninterrupted_one(tiny_base: Path, train_file: Path,
                                                                      tmp_path: Path) -> None:
    """Byte-identical, not merely close: weights, AdamW moments, the schedule, the dropout RNG and the data
    position all come back from the checkpoint."""
    spec = TrainingSpec.from_dict(SPEC)
    whole = train_adapter(tiny_base, [train_file], tmp_path / "whole", spec, base_model_name=TINY_BASE_NAME)

    saved: list[int] = []
    with pytest.raises(TrainingCancelled):
        train_adapter(tiny_base, [train_file], tmp_path / "cut", spec, base_model_name=TINY_BASE_NAME,
                      checkpoint_dir=tmp_path / "ckpt", checkpoint_every_steps=3, on_checkpoint=saved.append,
                      should_stop=lambda: saved == [3, 6])
    assert not (tmp_path / "cut").exists()  # nothing half-trained is written
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["step-000000006"]

    resumed = train_adapter(tiny_base, [train_file], tmp_path / "cut", spec, base_model_name=TINY_BASE_NAME,
                            checkpoint_dir=tmp_path / "ckpt", checkpoint_every_steps=3)
    assert resumed.resumed_from_step == 6
    assert resumed.loss_history == whole.loss_history
    assert sha256(resumed.out_dir / "adapter_model.safetensors") == sha256(whole.out_dir / "adapter_model.safetensors")


def test_a_checkpoint_of_another_spec_is_not_resumed(tiny_base: Path, train_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingCancelled):
        train_adapter(tiny_base, [train_file], tmp_path / "a", TrainingSpec.from_dict(SPEC),
                      base_model_name=TINY_BASE_NAME, checkpoint_dir=tmp_path / "ckpt", checkpoint_every_steps=2,
                      on_checkpoint=lambda step: None, should_stop=lambda: (tmp_path / "ckpt").exists())
    other = train_adapter(tiny_base, [train_file], tmp_path / "b", TrainingSpec.from_dict({**SPEC, "seed": 9}),
                          base_model_name=TINY_BASE_NAME, checkpoint_dir=tmp_path / "ckpt")
    assert other.resumed_from_step == 0


def test_modules_the_base_lacks_are_refused(tiny_base: Path, train_file: Path, tmp_path: Path) -> None:
    spec = TrainingSpec.from_dict({**SPEC, "lora": {**SPEC["lora"], "target_modules": ["q_proj", "c_attn"]}})
    with pytest.raises(EngineInputError, match="c_attn") as caught:
        train_adapter(tiny_base, [train_file], tmp_path / "x", spec, base_model_name=TINY_BASE_NAME)
    assert caught.value.field == "lora.target_modules"

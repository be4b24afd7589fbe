"""The real base model: a few training steps on SmolLM2-135M-Instruct, its own chat template formatting chat rows
(slow: marked smollm2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workers.engine.smollm2 import SMOLLM2_NAME
from workers.engine.training import IGNORE_INDEX, TrainingSpec, tokenize_rows, train_adapter

pytestmark = pytest.mark.smollm2


def test_smollm2_trains_a_few_steps_on_chat_and_instruction_rows(smollm2_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    chat = [{"messages": [{"role": "user", "content": f"What is {n} km in metres?"},
                          {"role": "assistant", "content": f"{n * 1000} metres."}]} for n in range(1, 9)]
    pairs = [{"prompt": f"Convert {n} kg to g:", "response": f" {n * 1000} g"} for n in range(1, 9)]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    files = [tmp_path / "chat.jsonl", tmp_path / "pairs.jsonl"]

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    turn = tokenize_rows(tokenizer, files[:1], max_seq_len=128).items[0]
    learnt = tokenizer.decode([i for i, label in zip(turn.input_ids, turn.labels, strict=True) if label != IGNORE_INDEX])
    assert learnt.startswith("1000 metres.<|im_end|>")  # only the reply, as SmolLM2's own template renders it

    spec = TrainingSpec.from_dict({"lora": {"rank": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
                                   "steps": 4, "learning_rate": 1e-3, "batch_size": 4, "max_seq_len": 64, "seed": 0})
    result = train_adapter(smollm2_dir, files, tmp_path / "out", spec, base_model_name=SMOLLM2_NAME, threads=2,
                           eval_files=files, card={"dataset": "demo/units@1"})
    assert result.steps == 4 and all(math.isfinite(loss) for _, loss in result.loss_history)
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    print(f"SmolLM2: {result.tokens / result.seconds:.0f} tokens/s on {result.threads} threads")
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    PeftModel.from_pretrained(base, tmp_path / "out")

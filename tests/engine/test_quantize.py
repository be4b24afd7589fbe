"""GGUF quantization through llama.cpp: every offered type loads, is smaller, and is still the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_models import TrainedBase
from workers.engine.errors import EngineInputError
from workers.engine.gguf_export import export_gguf
from workers.engine.llama_runtime import LlamaRuntime, verify_quantized
from workers.engine.quantize import quantize_gguf
from workers.engine.tiny import training_text

# The trained tiny base memorised the start of this text in 64-token rows: scored in the same
# windows, f16 perplexity is ~2, so quantization noise and a broken file both show. (On text it
# never saw, the overfit tiny model is worse than uniform, which measures nothing.)
MEMORISED = "".join(training_text()[:40])[:1200]
# Held-out text for SmolLM2: pydoc topics, about 1400 of its tokens.
HELD_OUT = "".join(training_text()[60:64])[:6000]
OFFERED = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"]


@pytest.fixture(scope="module")
def tiny_f16(trained_base: Callable[..., TrainedBase], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(export_gguf(trained_base().path, tmp_path_factory.mktemp("f16") / "tiny-f16.gguf")["path"])


@pytest.mark.parametrize("qtype", OFFERED)
def test_each_type_loads_and_keeps_the_model(qtype: str, tiny_f16: Path, tmp_path: Path) -> None:
    result = quantize_gguf(tiny_f16, tmp_path / f"{qtype}.gguf", qtype)

    assert result["size_bytes"] == (tmp_path / f"{qtype}.gguf").stat().st_size < tiny_f16.stat().st_size
    # Every row of the tiny model is 64 or 128 wide, so K-quants fall back per tensor to legacy
    # types (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0): the file is valid, just less compact than on a big model.
    assert 4.0 < result["bits_per_weight"] < 9.0
    assert not any(name.endswith("_K") for name in result["tensor_types"])
    assert result["tensor_types"]["F32"] == 5  # the norms stay float
    report = verify_quantized(tmp_path / f"{qtype}.gguf", tiny_f16, MEMORISED, window=64)
    assert report["ok"], report
    assert report["n_tokens"] > 400 and 1 / 1.1 < report["ppl_ratio"] < 1.1 and report["top1_agreement"] > 0.9
    with LlamaRuntime(tmp_path / f"{qtype}.gguf") as runtime:
        assert len(runtime.greedy(runtime.tokenize("The quick"), 8)) == 8


def test_lower_bit_types_are_smaller(tiny_f16: Path, tmp_path: Path) -> None:
    sizes = {q: quantize_gguf(tiny_f16, tmp_path / f"{q}.gguf", q)["bits_per_weight"] for q in ("Q8_0", "Q4_0")}
    assert sizes["Q4_0"] < sizes["Q8_0"] < 16


def test_verify_quantized_catches_a_broken_file(tiny_f16: Path, tmp_path: Path, tiny_base: Path) -> None:
    """An untrained model with the same tokenizer stands in for a file whose weights went wrong."""
    export_gguf(tiny_base, tmp_path / "other.gguf")
    report = verify_quantized(tmp_path / "other.gguf", tiny_f16, MEMORISED, window=64)
    assert not report["ok"], report


@pytest.mark.parametrize(
    ("src_name", "qtype", "code"),
    [("f16", "Q4_X", "invalid"), ("missing", "Q8_0", "missing"), ("q4", "Q8_0", "quantize"), ("junk", "Q8_0", "quantize")],
)
def test_refusals_leave_no_file(src_name: str, qtype: str, code: str, tiny_f16: Path, tmp_path: Path) -> None:
    sources = {"f16": tiny_f16, "missing": tmp_path / "nope.gguf", "junk": tmp_path / "junk.gguf"}
    (tmp_path / "junk.gguf").write_bytes(b"GGUF not really")
    if src_name == "q4":  # llama.cpp refuses to requantize an already quantized file
        sources["q4"] = Path(quantize_gguf(tiny_f16, tmp_path / "q4.gguf", "Q4_0")["path"])
    out = tmp_path / "out"
    with pytest.raises(EngineInputError) as caught:
        quantize_gguf(sources[src_name], out / "model.gguf", qtype)
    assert caught.value.code == code
    assert not out.exists() or not list(out.iterdir())


def test_runtime_perplexity_and_its_refusals(tiny_f16: Path, tmp_path: Path) -> None:
    with LlamaRuntime(tiny_f16) as runtime:
        logprobs, predictions = runtime.score(runtime.tokenize(MEMORISED), window=64)
        assert logprobs.shape == predictions.shape and (logprobs <= 0).all()
        ppl = runtime.perplexity(MEMORISED, window=64)
        assert ppl == pytest.approx(float(np.exp(-logprobs.mean()))) and ppl < 3
        with pytest.raises(EngineInputError, match="two tokens"):
            runtime.perplexity("a")
    with pytest.raises(EngineInputError) as caught:
        LlamaRuntime(tmp_path / "missing.gguf")
    assert caught.value.code == "missing"
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(EngineInputError) as caught:
        LlamaRuntime(tmp_path / "junk.gguf")
    assert caught.value.code == "gguf_load"


# --- SmolLM2-135M-Instruct ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_f16(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(export_gguf(smollm2_dir, tmp_path_factory.mktemp("smollm2") / "smollm2-f16.gguf")["path"])


@pytest.mark.smollm2
def test_smollm2_q4_k_m_answers_a_chat_prompt(smollm2_dir: Path, smollm2_f16: Path, tmp_path: Path) -> None:
    """Q4_K_M still knows that Paris is the capital of France.

    The bare question "What is the capital of France?" is a near-tie for this 135M model: in f16
    the first answer token "The" leads "L" by 0.07 logits, and the upstream Q4_1 GGUF itself
    answers "L'Étoile, la Marseillaise, ...". Asking for one word gives a margin above a logit.
    """
    from transformers import AutoTokenizer

    result = quantize_gguf(smollm2_f16, tmp_path / "q4_k_m.gguf", "Q4_K_M")
    assert result["size_bytes"] < smollm2_f16.stat().st_size / 2.5
    prompt = AutoTokenizer.from_pretrained(smollm2_dir).apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        tokenize=False, add_generation_prompt=True,
    )
    with LlamaRuntime(tmp_path / "q4_k_m.gguf") as runtime:
        # the rendered template carries its own special tokens: no BOS, as apply_chat_template(tokenize=True)
        ids = runtime.tokenize(prompt, add_special=False)
        answer = runtime.detokenize(runtime.greedy(ids, 32, stop_at_eog=True))
    assert "Paris" in answer, answer
    report = verify_quantized(tmp_path / "q4_k_m.gguf", smollm2_f16, HELD_OUT)
    assert report["ok"] and report["ppl_ratio"] < 1.25, report

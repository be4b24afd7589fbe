"""HF folder → GGUF: llama.cpp must run the file exactly like transformers runs the folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest

from tests.fixtures_models import TrainedBase
from workers.engine import gguf_export
from workers.engine.errors import EngineInputError
from workers.engine.gguf_export import LLAMA3_SPLIT_REGEX, export_gguf, permute_rope_rows
from workers.engine.gguf_outputs import f16_gate_passed
from workers.engine.llama_runtime import LlamaRuntime, verify_f16_export

N_TOKENS = 32
# Digits, contractions, runs of spaces and newlines, punctuation and non-ASCII: where pre-tokenizers differ.
TOKENIZER_PROBE = (
    "In 1999, it's   42 apples\n\n  and 3.14159 pies!\tDon't we'll they've?  "
    "Ünïcödé — naïve café 東京 🙂\r\n    def f(x): return x**2  # done"
)


def edited_copy(base: Path, dest: Path, *, config: dict | None = None, tokenizer: dict | None = None) -> Path:
    """A copy of a model folder with config.json / tokenizer.json keys replaced (weights shared)."""
    shutil.copytree(base, dest)
    for name, changes in (("config.json", config), ("tokenizer.json", tokenizer)):
        if changes:
            data = json.loads((dest / name).read_text())
            data.update(changes)
            (dest / name).write_text(json.dumps(data))
    return dest


def metadata(path: Path) -> tuple[dict[str, object], dict[str, tuple[int, ...]]]:
    """Scalar/string fields and tensor shapes (numpy order) of a GGUF."""
    reader = gguf.GGUFReader(path)
    fields: dict[str, object] = {}
    for key, field in reader.fields.items():
        if not field.types or field.types[0] == gguf.GGUFValueType.ARRAY:
            continue
        part = field.parts[field.data[0]]
        fields[key] = bytes(part).decode() if field.types[0] == gguf.GGUFValueType.STRING else part[0].item()
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors}
    return fields, shapes


def assert_verified(report: dict) -> None:
    for prompt in report["prompts"]:
        assert prompt["tokens_match"], prompt["prompt"]
        assert prompt["n_matched"] == N_TOKENS, prompt
        assert prompt["rel_logit_diff"] <= report["logits_rel_tol"], prompt
    assert report["ok"]


VARIANTS = {
    "tied-gqa": ({}, {}),
    "untied-mha": ({"tie_word_embeddings": False, "num_kv_heads": 4}, {}),
    "mistral": ({}, {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": 4096}),
    "rope-linear": ({}, {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
    "rope-llama3": ({}, {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_f16_export_matches_transformers(
    variant: str, trained_base: Callable[..., TrainedBase], tmp_path: Path
) -> None:
    build_kwargs, config_changes = VARIANTS[variant]
    base = trained_base(**build_kwargs)
    model_dir = edited_copy(base.path, tmp_path / "model", config=config_changes) if config_changes else base.path
    seen: list[tuple[int, int]] = []

    info = export_gguf(model_dir, tmp_path / "model.gguf", progress=lambda done, total: seen.append((done, total)))

    assert seen[-1] == (info["n_tensors"], info["n_tensors"]) and len(seen) == info["n_tensors"]
    assert_verified(verify_f16_export(model_dir, tmp_path / "model.gguf", base.prompts[:3], n_tokens=N_TOKENS))
    fields, shapes = metadata(tmp_path / "model.gguf")
    tied = build_kwargs.get("tie_word_embeddings", True)
    assert ("output.weight" in shapes) is not tied
    assert shapes["blk.0.attn_k.weight"] == (16 * build_kwargs.get("num_kv_heads", 2), 64)
    assert ("rope_freqs.weight" in shapes) is (variant == "rope-llama3")
    assert fields["llama.attention.head_count_kv"] == build_kwargs.get("num_kv_heads", 2)
    assert fields["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_F16)
    assert shapes["blk.0.attn_q.weight"] == (64, 64) and shapes["token_embd.weight"] == (512, 64)


def test_export_metadata_and_tokenizer(tiny_base: Path, tmp_path: Path) -> None:
    info = export_gguf(tiny_base, tmp_path / "tiny.gguf")
    fields, shapes = metadata(tmp_path / "tiny.gguf")
    assert {k: fields[k] for k in (
        "general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count",
        "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
        "llama.rope.dimension_count", "llama.vocab_size", "tokenizer.ggml.model", "tokenizer.ggml.pre",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
    )} == {
        "general.architecture": "llama", "llama.context_length": 256, "llama.embedding_length": 64,
        "llama.block_count": 2, "llama.feed_forward_length": 128, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 16, "llama.vocab_size": 512,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.padding_token_id": 0, "tokenizer.ggml.add_bos_token": False,
    }
    assert fields["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert fields["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert "<|im_start|>" in str(fields["tokenizer.chat_template"])
    assert shapes["blk.1.attn_norm.weight"] == (64,) and len(shapes) == info["n_tensors"] == 2 * 9 + 2
    assert info["n_params"] == sum(int(np.prod(s)) for s in shapes.values())
    with LlamaRuntime(tmp_path / "tiny.gguf") as runtime:
        assert runtime.n_vocab == 512
        assert runtime.is_eog(2)  # <|im_end|>
        assert runtime.detokenize(runtime.tokenize("Hello, world")) == "Hello, world"


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_other_dtypes_also_verify(dtype: str, trained_base: Callable[..., TrainedBase], tmp_path: Path) -> None:
    base = trained_base()
    info = export_gguf(base.path, tmp_path / f"{dtype}.gguf", dtype=dtype)
    report = verify_f16_export(base.path, tmp_path / f"{dtype}.gguf", base.prompts[:2], n_tokens=N_TOKENS)
    assert report["dtype"] == dtype
    assert_verified(report)
    assert info["size_bytes"] > (2 if dtype == "bf16" else 4) * info["n_params"]


def test_without_the_qk_permutation_the_gate_fails(
    trained_base: Callable[..., TrainedBase], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate has teeth: HF's rotate-half Q/K layout fed to llama.cpp unpermuted is caught."""
    base = trained_base()
    monkeypatch.setattr(gguf_export, "to_llama_layout", lambda name, rows, hp: rows)
    export_gguf(base.path, tmp_path / "wrong.gguf")
    report = verify_f16_export(base.path, tmp_path / "wrong.gguf", base.prompts[:2], n_tokens=N_TOKENS)
    assert not report["ok"]
    assert all(p["rel_logit_diff"] > 10 * report["logits_rel_tol"] for p in report["prompts"])


def gate_report(n_matched: int, gap: float | None, diff: float = 0.05, rel: float = 0.002) -> dict:
    prompt = {"tokens_match": True, "n_matched": n_matched, "max_abs_logit_diff": diff, "rel_logit_diff": rel,
              "reference_gap_at_mismatch": gap}
    return {"n_tokens": N_TOKENS, "logits_rel_tol": 0.005, "prompts": [prompt]}


def test_the_stack_gate_forgives_only_a_parting_at_a_tie_within_measured_noise() -> None:
    assert f16_gate_passed(gate_report(N_TOKENS, None))
    # runtimes that disagree by up to 0.05 can swap candidates 0.002 apart, not 0.5 apart
    assert f16_gate_passed(gate_report(8, 0.002))
    assert not f16_gate_passed(gate_report(8, 0.5))
    assert not f16_gate_passed(gate_report(8, 0.002, diff=0.0005))
    assert not f16_gate_passed(gate_report(N_TOKENS, None, rel=0.01))  # the logits themselves are off


def test_permute_rope_rows_interleaves_halves() -> None:
    rows = np.arange(2 * 8).reshape(8, 2)  # one head, head_dim 8: rotated pairs are rows (i, i + 4)
    assert permute_rope_rows(rows, 1)[:, 0].tolist() == [0, 8, 2, 10, 4, 12, 6, 14]
    assert permute_rope_rows(np.arange(16.0), 2).tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


PRE_TOKENIZERS = {
    "gpt-2": None,
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ]},
    "llama-bpe": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]},
}


@pytest.mark.parametrize("pre", list(PRE_TOKENIZERS))
def test_llama_cpp_tokenizes_like_the_folder(pre: str, tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    changes = {"pre_tokenizer": PRE_TOKENIZERS[pre]} if PRE_TOKENIZERS[pre] else None
    model_dir = edited_copy(tiny_base, tmp_path / "model", tokenizer=changes)
    assert export_gguf(model_dir, tmp_path / "model.gguf")["tokenizer_pre"] == pre
    expected = AutoTokenizer.from_pretrained(model_dir)(TOKENIZER_PROBE).input_ids
    with LlamaRuntime(tmp_path / "model.gguf") as runtime:
        assert runtime.tokenize(TOKENIZER_PROBE) == expected
        assert runtime.tokenize("<|im_start|>user\nhi<|im_end|>")[0] == 1  # special tokens parsed


@pytest.mark.parametrize(
    ("config", "tokenizer", "field"),
    [
        ({"architectures": ["GPT2LMHeadModel"]}, None, "architectures"),
        ({"architectures": ["Qwen2ForCausalLM"]}, None, "architectures"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, None, "rope_scaling"),
        ({"hidden_act": "gelu"}, None, "hidden_act"),
        (None, {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}}, "pre_tokenizer"),
        (None, {"normalizer": {"type": "NFKC"}}, "normalizer"),
    ],
)
def test_unsupported_models_are_refused(
    config: dict | None, tokenizer: dict | None, field: str, tiny_base: Path, tmp_path: Path
) -> None:
    model_dir = edited_copy(tiny_base, tmp_path / "model", config=config, tokenizer=tokenizer)
    with pytest.raises(EngineInputError) as caught:
        export_gguf(model_dir, tmp_path / "out" / "model.gguf")
    assert caught.value.field == field
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_failed_export_leaves_no_file(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing(path: Path, info: object) -> np.ndarray:
        calls.append(path)
        if len(calls) == 5:
            raise OSError("disk went away")
        return real(path, info)

    real = gguf_export.load_tensor_f32
    monkeypatch.setattr(gguf_export, "load_tensor_f32", failing)
    with pytest.raises(OSError, match="disk went away"):
        export_gguf(tiny_base, tmp_path / "model.gguf")
    assert list(tmp_path.iterdir()) == []


def test_bad_dtype_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineInputError, match="dtype"):
        export_gguf(tiny_base, tmp_path / "model.gguf", dtype="q4")


# --- SmolLM2-135M-Instruct ---------------------------------------------------------------------

SMOLLM2_PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
]


@pytest.mark.smollm2
def test_smollm2_f16_export_matches_transformers(smollm2_dir: Path, tmp_path: Path) -> None:
    info = export_gguf(smollm2_dir, tmp_path / "smollm2-f16.gguf")
    assert info["n_params"] == 134_515_008 and info["vocab_size"] == 49152
    assert_verified(verify_f16_export(smollm2_dir, tmp_path / "smollm2-f16.gguf", SMOLLM2_PROMPTS, n_tokens=N_TOKENS))

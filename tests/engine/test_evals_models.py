"""Evaluation engine on real models: the tiny Llama (briefly trained, so its predictions mean something),
adapters trained or broken on purpose, GGUF files run by llama.cpp, and SmolLM2 (marked smollm2)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from workers.engine.evals import (
    GGUFBackend,
    TransformersBackend,
    perplexity_suite,
    pydoc_documents,
    retention,
    run_suite,
    task_suite,
)
from workers.engine.evals.corpus import GENERAL_DOC_KEYS
from workers.engine.tiny import DEFAULT_TARGETS, TINY_BASE_NAME, build_tiny_adapter

# A lookup the base cannot know: the last token of the prompt decides a one-token answer.
KEYS = ("A", "B", "C", "D")
VALUES = ("string", "value", "class", "method")  # single tokens of the tiny tokenizer, after a space
MC_ROWS = [{"id": k, "context": f"Code {k}", "choices": list(VALUES), "answer": i} for i, k in enumerate(KEYS)]
GEN_ROWS = [{"id": k, "prompt": f"Code {k}", "answer": v} for k, v in zip(KEYS, VALUES, strict=True)]


@pytest.fixture(scope="module")
def trained_base(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny base after 60 steps on pydoc topics outside the eval corpus.

    Freshly initialised it predicts almost uniformly whatever an adapter does; trained a little it
    has something to lose (retention) and logits large enough for an adapter to learn a task.
    """
    out = tmp_path_factory.mktemp("evals") / "trained-base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    text = "\n\n".join(topics[key] for key in sorted(topics) if key not in GENERAL_DOC_KEYS)
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
    for _ in range(60):
        starts = torch.randint(0, len(ids) - 65, (8,), generator=generator)
        batch = torch.stack([ids[s : s + 64] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def useful_adapter(trained_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA trained with PEFT on the lookup task until it knows it (loss on the answer token only)."""
    from peft import LoraConfig, get_peft_model

    tokenizer = AutoTokenizer.from_pretrained(trained_base)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(trained_base, dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=list(DEFAULT_TARGETS), lora_dropout=0.0, task_type="CAUSAL_LM"
    )
    model = get_peft_model(base, config)
    inputs, labels = [], []
    for row in GEN_ROWS:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(" " + row["answer"], add_special_tokens=False)["input_ids"]
        inputs.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
    width = max(map(len, inputs))
    ids = torch.tensor([row + [0] * (width - len(row)) for row in inputs])
    targets = torch.tensor([row + [-100] * (width - len(row)) for row in labels])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    # Until the answers are learned (float kernels differ between CPUs, so a fixed step count is not
    # enough everywhere), within a bound.
    for _ in range(300):
        loss = model(input_ids=ids, labels=targets).loss
        if loss.item() < 0.05:
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.peft_config["default"].base_model_name_or_path = TINY_BASE_NAME
    out = tmp_path_factory.mktemp("evals") / "useful"
    model.save_pretrained(out, safe_serialization=True)
    return out


def reference_loglikelihoods(model_dir: Path, texts: list[str], max_length: int) -> list[float]:
    """Rolling log-likelihood written out plainly: chunks of max_length predicted tokens, each input the
    max_length tokens (BOS first) just before the chunk's end; one unbatched forward per chunk."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    totals = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        padded = [tokenizer.bos_token_id, *ids]  # padded[j] is the token just before ids[j]
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(ids), max_length):
                end = min(start + max_length, len(ids))
                first = max(0, end - max_length)
                logits = model(torch.tensor([padded[first:end]])).logits[0]
                logprobs = torch.log_softmax(logits.double(), dim=-1)
                total += sum(float(logprobs[j - first, ids[j]]) for j in range(start, end))
        totals.append(total)
    return totals


def test_perplexity_equals_direct_transformers_computation(trained_base: Path) -> None:
    docs = [doc for doc in pydoc_documents() if doc.id in ("assert", "booleans", "truth")]
    suite = perplexity_suite("test-ppl", docs, max_length=32)
    # 96-token batches: three windows per forward, the shorter last windows right-padded.
    result = run_suite(suite, TransformersBackend(trained_base, batch_tokens=96))
    expected = reference_loglikelihoods(trained_base, [doc.text for doc in docs], 32)
    assert [r["loglikelihood"] for r in result["records"]] == pytest.approx(expected, rel=1e-5)
    total_ll = sum(expected)
    words = sum(len(doc.text.split()) for doc in docs)  # these texts have no leading/trailing whitespace
    nbytes = sum(len(doc.text.encode()) for doc in docs)
    metrics = result["metrics"]
    assert metrics["word_perplexity"]["value"] == pytest.approx(math.exp(-total_ll / words), rel=1e-5)
    assert metrics["byte_perplexity"]["value"] == pytest.approx(math.exp(-total_ll / nbytes), rel=1e-5)
    assert metrics["bits_per_byte"]["value"] == pytest.approx(-total_ll / nbytes / math.log(2), rel=1e-5)
    tokens = sum(r["tokens"] for r in result["records"])
    assert metrics["bits_per_byte"]["value"] < 0.9 * math.log2(512) * tokens / nbytes  # below uniform
    json.dumps(result, allow_nan=False)


def test_useful_adapter_beats_base_on_its_task(trained_base: Path, useful_adapter: Path) -> None:
    base = TransformersBackend(trained_base)
    tuned = TransformersBackend(trained_base, adapters=[useful_adapter])
    mc, gen = task_suite("task:lookup", MC_ROWS), task_suite("task:lookup-gen", GEN_ROWS, max_new_tokens=1)
    base_mc, tuned_mc = run_suite(mc, base), run_suite(mc, tuned)
    base_gen, tuned_gen = run_suite(gen, base), run_suite(gen, tuned)
    assert tuned_mc["metrics"]["acc"]["value"] == 1.0 > base_mc["metrics"]["acc"]["value"]
    assert tuned_mc["metrics"]["acc_norm"]["value"] == 1.0 > base_mc["metrics"]["acc_norm"]["value"]
    assert tuned_gen["metrics"]["exact_match"]["value"] == 1.0 > base_gen["metrics"]["exact_match"]["value"]
    record = tuned_mc["records"][0]
    assert record["input"] == "Code A" and record["choices"] == list(VALUES) and len(record["loglikelihoods"]) == 4
    assert record["prediction"] == record["answer"] == 0 and record["correct"] is True
    assert tuned_mc["model"]["adapters"] == [{"path": str(useful_adapter), "weight": 1.0}]


def test_harmful_adapter_shows_worse_retention(trained_base: Path, tmp_path: Path) -> None:
    harmful = build_tiny_adapter(trained_base, tmp_path / "harmful", init_std=1.0, target_modules=DEFAULT_TARGETS)
    gentle = build_tiny_adapter(trained_base, tmp_path / "gentle", init_std=0.01, target_modules=DEFAULT_TARGETS)
    suite = perplexity_suite("test-ppl", pydoc_documents()[:4], max_length=128)
    base = run_suite(suite, TransformersBackend(trained_base))
    bad = retention(run_suite(suite, TransformersBackend(trained_base, adapters=[harmful])), base)
    kept = retention(run_suite(suite, TransformersBackend(trained_base, adapters=[gentle])), base)
    assert bad["retention"] < 0.9 and bad["bits_per_byte_delta"] > 0.3 and bad["word_perplexity_ratio"] > 2
    assert kept["retention"] == pytest.approx(1.0, abs=0.01)


def test_stack_merges_weighted_adapter_deltas(trained_base: Path, useful_adapter: Path, tmp_path: Path) -> None:
    """A stack is evaluated as W + Σ wᵢ·(alpha/r)ᵢ·BᵢAᵢ, adapters of different ranks and targets included."""
    other = build_tiny_adapter(trained_base, tmp_path / "other", rank=2, alpha=2, target_modules=("q_proj", "up_proj"))
    stack = [(useful_adapter, 0.5), (other, -2.0)]
    merged = TransformersBackend(trained_base, adapters=stack).model.state_dict()
    expected = load_file(trained_base / "model.safetensors")
    for folder, weight in stack:
        config = json.loads((folder / "adapter_config.json").read_text())
        scaling = config["lora_alpha"] / config["r"]
        factors = load_file(folder / "adapter_model.safetensors")
        for name, a in factors.items():
            if ".lora_A." in name:
                b = factors[name.replace(".lora_A.", ".lora_B.")]
                target = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
                expected[target] = expected[target] + weight * scaling * (b @ a)
    for name, tensor in expected.items():
        torch.testing.assert_close(merged[name], tensor, rtol=1e-5, atol=1e-6)


def _gguf_export(model_dir: Path, out: Path) -> Path:
    pytest.importorskip("llama_cpp")
    from workers.engine.gguf_export import export_gguf

    export_gguf(model_dir, out, dtype="f16")
    return out


def test_gguf_backend_matches_transformers(trained_base: Path, useful_adapter: Path, tmp_path: Path) -> None:
    """The same suites on llama.cpp (an f16 export of base + useful adapter, merged) score as transformers."""
    hf = TransformersBackend(trained_base, adapters=[useful_adapter])
    folder = tmp_path / "merged"
    hf.model.save_pretrained(folder, safe_serialization=True)
    hf.tokenizer.save_pretrained(folder)
    gguf = GGUFBackend(_gguf_export(folder, tmp_path / "merged-f16.gguf"), max_length=64)
    docs = pydoc_documents()[:3]
    assert [gguf.tokenize(doc.text) for doc in docs] == [hf.tokenize(doc.text) for doc in docs]
    ppl = perplexity_suite("test-ppl", docs, max_length=64)
    on_gguf, on_hf = run_suite(ppl, gguf), run_suite(ppl, hf)
    assert on_gguf["settings"] == on_hf["settings"] == {"max_length": 64}
    bpb = on_gguf["metrics"]["bits_per_byte"]["value"]
    assert bpb == pytest.approx(on_hf["metrics"]["bits_per_byte"]["value"], rel=1e-3)
    mc = task_suite("task:lookup", MC_ROWS)  # choices share their context: exercises the KV-cache reuse
    mc_gguf, mc_hf = run_suite(mc, gguf), run_suite(mc, hf)
    for a, b in zip(mc_gguf["records"], mc_hf["records"], strict=True):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=5e-3)
    assert mc_gguf["metrics"]["acc"]["value"] == 1.0
    gen = task_suite("task:lookup-gen", GEN_ROWS, max_new_tokens=3)
    outputs_gguf = [r["output"] for r in run_suite(gen, gguf)["records"]]
    assert outputs_gguf == [r["output"] for r in run_suite(gen, hf)["records"]]
    assert on_gguf["model"]["backend"] == "gguf" and on_gguf["versions"]["llama_cpp"]


@pytest.mark.smollm2
def test_smollm2_perplexity_equals_direct_transformers_computation(smollm2_dir: Path) -> None:
    docs = pydoc_documents()[:2]
    result = run_suite(perplexity_suite("test-ppl", docs, max_length=128), TransformersBackend(smollm2_dir))
    expected = reference_loglikelihoods(smollm2_dir, [doc.text for doc in docs], 128)
    assert [r["loglikelihood"] for r in result["records"]] == pytest.approx(expected, rel=1e-4)
    assert 0.3 < result["metrics"]["bits_per_byte"]["value"] < 2.0  # a real language model on English prose


@pytest.mark.smollm2
def test_smollm2_packaged_gguf_scores_like_its_transformers_conversion(smollm2_dir: Path) -> None:
    """The HF folder holds the Q4_1 GGUF's weights dequantized, so the two differ by llama.cpp's arithmetic only."""
    pytest.importorskip("llama_cpp")
    from workers.engine.smollm2 import smollm2_gguf_path

    suite = perplexity_suite("test-ppl", pydoc_documents()[:2], max_length=128)
    on_gguf = run_suite(suite, GGUFBackend(smollm2_gguf_path(), max_length=128))
    on_hf = run_suite(suite, TransformersBackend(smollm2_dir))
    assert on_gguf["metrics"]["bits_per_byte"]["value"] == pytest.approx(
        on_hf["metrics"]["bits_per_byte"]["value"], rel=0.02
    )

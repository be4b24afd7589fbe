"""The tiny-model factory: a real Llama-architecture model and real PEFT adapters, in seconds.

Everything is deterministic from the seed, so tests can build their fixtures fresh instead of
downloading anything. The tokenizer is a byte-level BPE (GPT-2 pre-tokenization, like SmolLM2's)
trained on text that ships with Python itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

TINY_BASE_NAME = "nomoat/tiny-llama"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def training_text() -> list[str]:
    """English prose bundled with CPython (pydoc's topic help), in a fixed order."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def build_tokenizer(out_dir: Path, *, vocab_size: int = 512) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)


def build_tiny_base(
    out_dir: Path | str,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_size: int = 512,
    tie_word_embeddings: bool = True,
    name: str = TINY_BASE_NAME,
) -> Path:
    """Write a tiny LlamaForCausalLM (HF folder: config, safetensors, tokenizer) and return its path."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out, vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    config._name_or_path = name
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(out)
    return out


def build_tiny_adapter(
    base_dir: Path | str,
    out_dir: Path | str,
    *,
    rank: int = 4,
    alpha: float = 8,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
    seed: int = 1,
    init_std: float = 0.05,
    use_rslora: bool = False,
    base_model_name: str = TINY_BASE_NAME,
    license: str = "apache-2.0",
    card_extra: dict | None = None,
) -> Path:
    """Write a PEFT LoRA adapter folder for `base_dir` with seeded, non-zero A and B factors."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=list(target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=use_rslora,
    )
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * init_std)
    model.peft_config["default"].base_model_name_or_path = base_model_name
    model.save_pretrained(out, safe_serialization=True)
    write_card(out / "README.md", {"license": license, "base_model": base_model_name, "tags": ["lora"], **(card_extra or {})})
    return out


def write_card(path: Path, front_matter: dict, body: str = "A tiny test adapter.\n") -> None:
    import yaml

    path.write_text(f"---\n{yaml.safe_dump(front_matter, sort_keys=True)}---\n\n{body}")


def read_json(path: Path | str) -> dict:
    return json.loads(Path(path).read_text())


def train_lora(
    base_dir: Path | str,
    out_dir: Path | str,
    examples: Sequence[tuple[str, str]],
    *,
    base_model_name: str,
    rank: int = 8,
    alpha: float = 16,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
    steps: int = 30,
    learning_rate: float = 5e-3,
    seed: int = 0,
    license: str = "apache-2.0",
    card_extra: dict | None = None,
) -> Path:
    """Train a real PEFT LoRA on (prompt, answer) pairs, loss on the answers only; deterministic for a seed.

    Small enough for a CPU test (a few seconds on the tiny model, under a minute on SmolLM2-135M).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules),
                                            lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    inputs, labels = [], []
    for prompt, answer in examples:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        inputs.append(prompt_ids + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
    width = max(map(len, inputs))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([row + [pad] * (width - len(row)) for row in inputs])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in inputs])
    targets = torch.tensor([row + [-100] * (width - len(row)) for row in labels])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, attention_mask=mask, labels=targets).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.peft_config["default"].base_model_name_or_path = base_model_name
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    write_card(out / "README.md", {"license": license, "base_model": base_model_name, "tags": ["lora"],
                                   **(card_extra or {})}, body="A LoRA adapter trained with PEFT.\n")
    return out

"""HF Llama-family folder → GGUF, the runtime format llama.cpp loads.

What llama.cpp's own convert_hf_to_gguf.py does for LlamaModel, without holding the model in
memory: the header (metadata and tensor infos) is built from the safetensors headers alone, then
tensors are streamed one at a time from memory-mapped files. Two things matter for correctness:

- Q/K rows are permuted from HF's rotate-half RoPE layout to llama.cpp's interleaved one
  (`permute_rope_rows`); the same permutation is applied to a LoRA's B factor in gguf_adapter.
- The tokenizer is written so llama.cpp tokenizes like the folder's `tokenizer.json`: the
  pre-tokenizer is recognised structurally and mapped to a `tokenizer.ggml.pre` llama.cpp knows;
  anything else is refused rather than exported with a silently different tokenization.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from workers.engine.errors import EngineInputError
from workers.engine.fsutil import atomic_path
from workers.engine.safetensors_io import TensorInfo, load_tensor_f32, read_header
from workers.engine.shapes import weight_files

# HF architectures whose weights and forward pass are llama.cpp's `llama` graph.
SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
}
GGUF_ARCH = gguf.MODEL_ARCH.LLAMA

# dtype name → (general.file_type, storage type of 2-D weights). Norms and other 1-D tensors stay
# F32 in every file type, as in convert_hf_to_gguf.py: they are tiny and precision-sensitive.
DTYPES: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "bf16": (gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16),
}

# Tensors a checkpoint may carry that are recomputed at run time, never exported.
SKIPPED_SUFFIXES = ("rotary_emb.inv_freq",)

# The Llama 3 pre-tokenizer regex, as tokenizer.json spells it (llama.cpp: "llama-bpe").
LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LlamaHParams:
    """The hyper-parameters llama.cpp's llama graph needs, read from config.json."""

    architecture: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    rope_theta: float
    rms_eps: float
    tied_embeddings: bool
    rope_scaling: dict[str, Any] | None

    @property
    def rope_type(self) -> str:
        scaling = self.rope_scaling or {}
        return str(scaling.get("rope_type", scaling.get("type", "default")))


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineInputError("file is missing", file=path.name, code="missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineInputError(f"not valid JSON ({exc})", file=path.name, code="json") from None
    if not isinstance(data, dict):
        raise EngineInputError("must be a JSON object", file=path.name, code="json")
    return data


def load_hparams(model_dir: Path | str) -> LlamaHParams:
    """Read and check config.json; refuse architectures llama.cpp's llama graph would run wrongly."""
    config = read_json(Path(model_dir) / "config.json")
    archs = config.get("architectures") or []
    arch = archs[0] if isinstance(archs, list) and archs else None
    if arch not in SUPPORTED_ARCHITECTURES:
        raise EngineInputError(
            f"architecture {arch!r} is not supported for GGUF export; expected one of {', '.join(SUPPORTED_ARCHITECTURES)}",
            file="config.json", field="architectures", code="architecture",
        )
    if config.get("hidden_act", "silu") != "silu":
        raise EngineInputError("only the SiLU activation is supported", file="config.json", field="hidden_act")
    try:
        n_head = int(config["num_attention_heads"])
        n_embd = int(config["hidden_size"])
        hp = LlamaHParams(
            architecture=arch,
            n_layer=int(config["num_hidden_layers"]),
            n_embd=n_embd,
            n_ff=int(config["intermediate_size"]),
            n_head=n_head,
            n_head_kv=int(config.get("num_key_value_heads") or n_head),
            head_dim=int(config.get("head_dim") or n_embd // n_head),
            n_ctx=int(config.get("max_position_embeddings", 2048)),
            rope_theta=float(config.get("rope_theta", 10000.0)),
            rms_eps=float(config.get("rms_norm_eps", 1e-6)),
            # LlamaConfig and MistralConfig both default to untied embeddings.
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            rope_scaling=config.get("rope_scaling"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineInputError(f"missing or malformed hyper-parameter ({exc})", file="config.json") from None
    window = config.get("sliding_window")
    if window:
        # llama.cpp's llama graph attends to the whole context: it is exact only within the window.
        hp = replace(hp, n_ctx=min(hp.n_ctx, int(window)))
    if hp.rope_type not in ("default", "linear", "llama3"):
        raise EngineInputError(
            f"RoPE scaling {hp.rope_type!r} is not supported; expected none, linear or llama3",
            file="config.json", field="rope_scaling",
        )
    return hp


def gguf_tensor_name(hf_name: str, n_layer: int) -> str | None:
    """llama.cpp's name for an HF tensor (`model.layers.0.self_attn.q_proj.weight` → `blk.0.attn_q.weight`)."""
    if hf_name.endswith(SKIPPED_SUFFIXES):
        return None
    name = gguf.get_tensor_name_map(GGUF_ARCH, n_layer).get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise EngineInputError("tensor has no llama.cpp equivalent", field=hf_name, code="tensor")
    return name


def permute_rope_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder output rows from HF's rotate-half RoPE layout to llama.cpp's interleaved pairs.

    Within each head, HF keeps the two halves of every rotated pair head_dim/2 apart; llama.cpp
    (like Meta's original checkpoints) keeps them adjacent. Works on weights, biases and LoRA B.
    """
    return rows.reshape(n_heads, 2, rows.shape[0] // n_heads // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def to_llama_layout(gguf_name: str, rows: np.ndarray, hp: LlamaHParams) -> np.ndarray:
    """Apply the Q/K row permutation where llama.cpp expects it; other tensors pass through."""
    if ".attn_q." in gguf_name:
        return permute_rope_rows(rows, hp.n_head)
    if ".attn_k." in gguf_name:
        return permute_rope_rows(rows, hp.n_head_kv)
    return rows


def llama3_rope_factors(hp: LlamaHParams) -> np.ndarray:
    """Per-frequency divisors for Llama 3.x RoPE scaling (llama.cpp reads them as `rope_freqs`)."""
    scaling = hp.rope_scaling or {}
    factor = float(scaling.get("factor", 8.0))
    low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
    old_ctx = float(scaling.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / hp.rope_theta ** (np.arange(0, hp.head_dim, 2, dtype=np.float64) / hp.head_dim)
    wavelen = 2 * math.pi / freqs
    smooth = (old_ctx / wavelen - low) / (high - low)
    factors = np.where(
        wavelen < old_ctx / high, 1.0, np.where(wavelen > old_ctx / low, factor, 1.0 / ((1 - smooth) / factor + smooth))
    )
    return factors.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class GGUFVocab:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int]  # bos / eos / unk / pad
    add_bos: bool
    add_eos: bool
    chat_template: str | None


def _pre_tokenizer_steps(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        return [step for child in node.get("pretokenizers", []) for step in _pre_tokenizer_steps(child)]
    return [node]


def detect_pre_tokenizer(tokenizer: dict[str, Any]) -> str:
    """The `tokenizer.ggml.pre` whose regex split equals this tokenizer.json's pre-tokenizer."""
    normalizer = tokenizer.get("normalizer")
    if normalizer and not (normalizer.get("type") == "Sequence" and not normalizer.get("normalizers")):
        raise EngineInputError(
            f"normalizer {normalizer.get('type')!r} has no llama.cpp BPE equivalent",
            file="tokenizer.json", field="normalizer", code="tokenizer",
        )
    steps = _pre_tokenizer_steps(tokenizer.get("pre_tokenizer"))
    kinds = [step.get("type") for step in steps]
    byte_level = steps[-1] if kinds and kinds[-1] == "ByteLevel" else None
    if byte_level is not None and not byte_level.get("add_prefix_space", False):
        regex = byte_level.get("use_regex", True)
        if kinds == ["ByteLevel"] and regex:
            return "gpt-2"
        if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and regex:
            return "smollm"
        split = steps[0]
        if (
            kinds == ["Split", "ByteLevel"] and not regex and split.get("behavior") == "Isolated"
            and not split.get("invert") and (split.get("pattern") or {}).get("Regex") == LLAMA3_SPLIT_REGEX
        ):
            return "llama-bpe"
    raise EngineInputError(
        f"pre-tokenizer {kinds or 'none'} is not one llama.cpp reproduces; expected byte-level BPE "
        "(GPT-2, SmolLM digits+GPT-2, or Llama 3)",
        file="tokenizer.json", field="pre_tokenizer", code="tokenizer",
    )


def _special_id(value: Any, vocab: dict[str, int]) -> int | None:
    """A special token given as an id, a list of ids (first wins), a string or an AddedToken dict."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("content")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    return vocab.get(str(value))


def load_vocab(model_dir: Path, n_vocab: int) -> GGUFVocab:
    """Read tokenizer.json (+ tokenizer_config.json, config.json) into GGUF's BPE vocabulary fields."""
    from tokenizers import Tokenizer

    tokenizer_path = model_dir / "tokenizer.json"
    tokenizer = read_json(tokenizer_path)
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE":
        raise EngineInputError(
            f"tokenizer model {model.get('type')!r} is not supported; expected byte-level BPE",
            file="tokenizer.json", field="model.type", code="tokenizer",
        )
    pre = detect_pre_tokenizer(tokenizer)
    vocab: dict[str, int] = dict(model.get("vocab") or {})
    added = {entry["id"]: entry for entry in tokenizer.get("added_tokens", [])}
    vocab.update({entry["content"]: token_id for token_id, entry in added.items()})
    if max(vocab.values(), default=-1) >= n_vocab:
        raise EngineInputError(
            f"tokenizer has ids up to {max(vocab.values())} but the embedding has {n_vocab} rows",
            file="tokenizer.json", code="vocab_size",
        )
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [int(gguf.TokenType.UNUSED)] * n_vocab
    for text, token_id in vocab.items():
        tokens[token_id] = text
        entry = added.get(token_id)
        if entry is None:
            types[token_id] = int(gguf.TokenType.NORMAL)
        else:
            types[token_id] = int(gguf.TokenType.CONTROL if entry.get("special") else gguf.TokenType.USER_DEFINED)
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]

    # Special ids: the model's config first (what generation stops on), the tokenizer's as fallback.
    config = read_json(model_dir / "config.json")
    tok_config_path = model_dir / "tokenizer_config.json"
    tok_config = read_json(tok_config_path) if tok_config_path.exists() else {}
    special_ids: dict[str, int] = {}
    for kind in ("bos", "eos", "unk", "pad"):
        found = _special_id(config.get(f"{kind}_token_id"), vocab)
        if found is None:
            found = _special_id(tok_config.get(f"{kind}_token"), vocab)
        if found is not None and 0 <= found < n_vocab:
            special_ids[kind] = found

    # Whether encoding adds BOS/EOS: ask the tokenizer itself rather than guess from its config.
    probe = Tokenizer.from_file(str(tokenizer_path))
    plain = probe.encode("a", add_special_tokens=False).ids
    full = probe.encode("a", add_special_tokens=True).ids
    start = full.index(plain[0]) if plain and plain[0] in full else 0
    prefix, suffix = full[:start], full[start + len(plain) :]
    if len(prefix) > 1 or len(suffix) > 1:
        raise EngineInputError(
            "the tokenizer's post-processor adds more than one token at an end", file="tokenizer.json",
            field="post_processor", code="tokenizer",
        )
    if prefix:
        special_ids["bos"] = prefix[0]
    if suffix:
        special_ids["eos"] = suffix[0]

    chat_template = tok_config.get("chat_template")
    template_file = model_dir / "chat_template.jinja"
    if chat_template is None and template_file.exists():
        chat_template = template_file.read_text()
    return GGUFVocab(
        tokens=tokens,
        token_types=types,
        merges=merges,
        pre=pre,
        special_ids=special_ids,
        add_bos=bool(prefix),
        add_eos=bool(suffix),
        chat_template=chat_template if isinstance(chat_template, str) else None,
    )


def write_vocab(writer: gguf.GGUFWriter, vocab: GGUFVocab) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    setters = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for kind, token_id in vocab.special_ids.items():
        setters[kind](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


# ---------------------------------------------------------------------------------------------
# Tensors and the file


@dataclass(frozen=True)
class PlannedTensor:
    gguf_name: str
    file: Path
    info: TensorInfo
    storage: gguf.GGMLQuantizationType


def plan_tensors(model_dir: Path, hp: LlamaHParams, storage: gguf.GGMLQuantizationType) -> list[PlannedTensor]:
    """Every tensor to write, in file order, with its GGUF name and storage type; nothing is read yet."""
    planned: list[PlannedTensor] = []
    for path in weight_files(model_dir):
        for info in sorted(read_header(path).tensors.values(), key=lambda t: t.start):
            if info.name == "lm_head.weight" and hp.tied_embeddings:
                continue  # tied: llama.cpp falls back to token_embd when output.weight is absent
            gguf_name = gguf_tensor_name(info.name, hp.n_layer)
            if gguf_name is None:
                continue
            kind = storage if len(info.shape) == 2 else gguf.GGMLQuantizationType.F32
            planned.append(PlannedTensor(gguf_name, path, info, kind))
    names = {t.gguf_name for t in planned}
    required = {"token_embd.weight", "output_norm.weight"} | ({"output.weight"} if not hp.tied_embeddings else set())
    missing = sorted(required - names)
    if missing:
        raise EngineInputError(f"weights are missing {', '.join(missing)}", file="model.safetensors", code="missing")
    return planned


def encode(data: np.ndarray, storage: gguf.GGMLQuantizationType) -> np.ndarray:
    if storage == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if storage == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), storage)


def stored_nbytes(shape: tuple[int, ...], storage: gguf.GGMLQuantizationType) -> int:
    block, type_size = gguf.GGML_QUANT_SIZES[storage]
    return math.prod(shape) // block * type_size


def _tensor_stream(planned: list[PlannedTensor], hp: LlamaHParams) -> Iterator[np.ndarray]:
    """Each planned tensor's bytes as they go into the file, read from its memory-mapped source."""
    for tensor in planned:
        yield encode(to_llama_layout(tensor.gguf_name, load_tensor_f32(tensor.file, tensor.info), hp), tensor.storage)


def export_gguf(
    model_dir: Path | str,
    out_path: Path | str,
    *,
    dtype: str = "f16",
    name: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write `model_dir` (an HF Llama-family folder) as a GGUF file at `out_path`, atomically.

    `name` becomes general.name (default: the folder's name); `progress(done, total)` is called
    after each tensor. Peak memory is a few float32 copies of the largest tensor plus the tokenizer,
    whatever the model's size. Returns: path,
    size, tensor and parameter counts, file type, tokenizer pre-type and the time taken.
    """
    started = time.perf_counter()
    if dtype not in DTYPES:
        raise EngineInputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", field="dtype")
    model_dir = Path(model_dir)
    file_type, storage = DTYPES[dtype]
    hp = load_hparams(model_dir)
    planned = plan_tensors(model_dir, hp, storage)
    n_vocab = next(t.info.shape[0] for t in planned if t.gguf_name == "token_embd.weight")
    vocab = load_vocab(model_dir, n_vocab)
    extra: list[tuple[str, np.ndarray]] = []
    if hp.rope_type == "llama3":
        extra.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_factors(hp)))

    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[GGUF_ARCH])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or model_dir.name)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    if hp.head_dim != hp.n_embd // hp.n_head:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float((hp.rope_scaling or {})["factor"]))
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_vocab(writer, vocab)

    for tensor in planned:
        writer.add_tensor_info(
            tensor.gguf_name, tensor.info.shape, np.dtype(np.float32), stored_nbytes(tensor.info.shape, tensor.storage),
            raw_dtype=tensor.storage,
        )
    for tensor_name, data in extra:
        writer.add_tensor_info(tensor_name, data.shape, data.dtype, data.nbytes, raw_dtype=gguf.GGMLQuantizationType.F32)

    total = len(planned) + len(extra)
    with atomic_path(out_path) as tmp:
        try:
            writer.write_header_to_file(tmp)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for done, data in enumerate(itertools.chain(_tensor_stream(planned, hp), (d for _, d in extra)), 1):
                writer.write_tensor_data(data)
                if progress is not None:
                    progress(done, total)
        finally:
            writer.close()

    return {
        "path": str(out_path),
        "architecture": hp.architecture,
        "dtype": dtype,
        "file_type": int(file_type),
        "size_bytes": Path(out_path).stat().st_size,
        "n_tensors": total,
        "n_params": sum(t.info.numel for t in planned),
        "vocab_size": n_vocab,
        "tokenizer_pre": vocab.pre,
        "add_bos": vocab.add_bos,
        "context_length": hp.n_ctx,
        "seconds": round(time.perf_counter() - started, 3),
    }


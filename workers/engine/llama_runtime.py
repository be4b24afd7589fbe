"""llama.cpp as the hub's runtime check: load a GGUF (with LoRA adapters), decode, score, verify.

Thin helpers over llama-cpp-python's low-level C API (the high-level `Llama` class takes only
one adapter and hides the logits of all but the last position). The verification gates answer
the questions a build must pass before its GGUF is published:

- `verify_f16_export`: does llama.cpp run the exported file like transformers runs the folder?
- `verify_quantized`: is a quantized file still the same model (perplexity, top-1 agreement)?
- `verify_runtime_stack`: does base GGUF + adapter GGUFs at run time equal the merged export?
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.errors import EngineInputError

# One thread: llama.cpp's workers spin-wait, which collapses on a shared 2-core machine; callers that
# own the machine (the bench, a dedicated worker) pass more.
DEFAULT_THREADS = 1
DEFAULT_CTX = 512


log = logging.getLogger(__name__)

# ggml's log levels (ggml.h: NONE, DEBUG, INFO, WARN, ERROR, CONT) as logging levels; llama-cpp-python's
# own bridge predates DEBUG being inserted and prints warnings as errors.
GGML_LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_last_level = [logging.DEBUG]
_keepalive: list[Any] = []  # the ctypes log callback must outlive every llama.cpp call


def _forward_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """Route llama.cpp's log lines into this module's logger (CONT lines keep the previous level)."""
    if level != 5:
        _last_level[0] = GGML_LOG_LEVELS.get(level, logging.DEBUG)
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        log.log(_last_level[0], message)


@functools.cache
def llama_backend() -> Any:
    """Import llama_cpp once, route its log through logging and initialise its backend."""
    import llama_cpp

    callback = llama_cpp.llama_log_callback(_forward_log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _keepalive.append(callback)
    llama_cpp.llama_backend_init()
    return llama_cpp


@dataclass(frozen=True)
class Adapter:
    """A GGUF LoRA adapter and the scale it is applied with (llama.cpp multiplies alpha/r by it)."""

    path: Path | str
    scale: float = 1.0


class LlamaRuntime:
    """One llama.cpp model + context (CPU), optionally with LoRA adapters; use as a context manager.

    n_ctx defaults to the smaller of DEFAULT_CTX and the model's training context.
    """

    def __init__(
        self,
        gguf_path: Path | str,
        *,
        adapters: Sequence[Adapter] = (),
        n_ctx: int | None = None,
        n_threads: int = DEFAULT_THREADS,
    ) -> None:
        lib = llama_backend()
        self._lib = lib
        self.path = Path(gguf_path)
        if not self.path.is_file():
            raise EngineInputError("GGUF file not found", file=str(self.path), code="missing")
        model_params = lib.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(str(self.path).encode(), model_params)
        if not self._model:
            raise EngineInputError("llama.cpp could not load this GGUF", file=self.path.name, code="gguf_load")
        self._ctx = None
        try:
            if n_ctx is None:
                n_ctx = min(DEFAULT_CTX, int(lib.llama_model_n_ctx_train(self._model)))
            ctx_params = lib.llama_context_default_params()
            ctx_params.n_ctx = ctx_params.n_batch = ctx_params.n_ubatch = n_ctx
            ctx_params.n_threads = ctx_params.n_threads_batch = n_threads
            self._ctx = lib.llama_init_from_model(self._model, ctx_params)
            if not self._ctx:
                raise EngineInputError("llama.cpp could not create a context", file=self.path.name, code="gguf_load")
            self._vocab = lib.llama_model_get_vocab(self._model)
            self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
            self.n_ctx = n_ctx
            if adapters:
                self._set_adapters(adapters)
        except BaseException:
            self.close()
            raise

    def _set_adapters(self, adapters: Sequence[Adapter]) -> None:
        lib = self._lib
        handles = []
        for adapter in adapters:
            handle = lib.llama_adapter_lora_init(self._model, str(adapter.path).encode())
            if not handle:
                raise EngineInputError(
                    "llama.cpp refused this LoRA adapter for the model", file=Path(adapter.path).name, code="adapter_load"
                )
            handles.append(handle)  # freed together with the model
        array = (lib.llama_adapter_lora_p_ctypes * len(handles))(*handles)
        scales = (ctypes.c_float * len(handles))(*(float(a.scale) for a in adapters))
        if lib.llama_set_adapters_lora(self._ctx, array, len(handles), scales) != 0:
            raise EngineInputError("llama.cpp could not apply the LoRA adapters", code="adapter_load")

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LlamaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tokens ---------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """llama.cpp's tokenization; add_special adds BOS/EOS as the GGUF says, like HF's default."""
        raw = text.encode()
        capacity = len(raw) + 8
        while True:
            buf = (self._lib.llama_token * capacity)()
            n = self._lib.llama_tokenize(self._vocab, raw, len(raw), buf, capacity, add_special, parse_special)
            if n >= 0:
                return list(buf[:n])
            capacity = -n

    def detokenize(self, token_ids: Sequence[int], *, special: bool = False) -> str:
        ids = (self._lib.llama_token * max(1, len(token_ids)))(*token_ids)
        capacity = 16 * len(token_ids) + 16
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = self._lib.llama_detokenize(self._vocab, ids, len(token_ids), buf, capacity, not special, special)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            capacity = -n

    def is_eog(self, token_id: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token_id))

    # -- decoding -------------------------------------------------------------------------------

    def _decode(self, token_ids: Sequence[int], start: int, *, all_logits: bool) -> np.ndarray:
        """Append token_ids at positions start.. to sequence 0; return logits (all rows or the last)."""
        lib = self._lib
        n = len(token_ids)
        if start + n > self.n_ctx:
            raise EngineInputError(f"{start + n} tokens do not fit the context of {self.n_ctx}", code="context")
        batch = lib.llama_batch_init(n, 0, 1)
        try:
            for i, token in enumerate(token_ids):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or i == n - 1
            batch.n_tokens = n
            if lib.llama_decode(self._ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
        finally:
            lib.llama_batch_free(batch)
        rows = n if all_logits else 1
        return np.ctypeslib.as_array(lib.llama_get_logits(self._ctx), shape=(rows, self.n_vocab)).copy()

    def _reset(self) -> None:
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)

    def logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """Logits at every position of token_ids, evaluated from an empty cache: shape (n, n_vocab)."""
        self._reset()
        return self._decode(token_ids, 0, all_logits=True)

    def greedy(self, token_ids: Sequence[int], n_tokens: int, *, stop_at_eog: bool = False) -> list[int]:
        """Argmax continuation of token_ids, one token at a time through the KV cache."""
        self._reset()
        logits = self._decode(token_ids, 0, all_logits=False)[-1]
        out: list[int] = []
        for _ in range(n_tokens):
            token = int(np.argmax(logits))
            if stop_at_eog and self.is_eog(token):
                break
            out.append(token)
            if len(out) < n_tokens:
                logits = self._decode([token], len(token_ids) + len(out) - 1, all_logits=False)[-1]
        return out

    def score(self, token_ids: Sequence[int], *, window: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Log-probability of each next token and the argmax prediction before it.

        Scored in non-overlapping windows of `window` tokens (each from an empty cache), as
        llama.cpp's perplexity tool does; the first token of each window is context only.
        """
        logprobs, predictions = [], []
        for begin in range(0, len(token_ids), window):
            chunk = list(token_ids[begin : begin + window])
            if len(chunk) < 2:
                break
            logits = self.logits(chunk)[:-1].astype(np.float64)
            top = logits.max(axis=1)
            log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
            targets = np.asarray(chunk[1:])
            logprobs.append(logits[np.arange(len(targets)), targets] - log_z)
            predictions.append(logits.argmax(axis=1))
        if not logprobs:
            raise EngineInputError("at least two tokens are needed to score", code="too_short")
        return np.concatenate(logprobs), np.concatenate(predictions)

    def perplexity(self, text: str, *, window: int = 256) -> float:
        """exp(mean negative log-likelihood) of the text's tokens (see `score`)."""
        logprobs, _ = self.score(self.tokenize(text), window=window)
        return float(math.exp(-logprobs.mean()))


# ---------------------------------------------------------------------------------------------
# Verification gates


def top2_gap(logits: np.ndarray) -> float:
    top = np.partition(logits, -2)[-2:]
    return float(top[1] - top[0])


def hf_reference(model_dir: Path | str, prompts: Sequence[str], n_tokens: int) -> list[dict[str, Any]]:
    """transformers' float32 greedy continuation and teacher-forced logits for each prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    results = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt).input_ids
            out = model(input_ids=torch.tensor([ids]), use_cache=True)
            generated: list[int] = []
            for _ in range(n_tokens):
                generated.append(int(out.logits[0, -1].argmax()))
                if len(generated) < n_tokens:
                    out = model(
                        input_ids=torch.tensor([[generated[-1]]]), past_key_values=out.past_key_values, use_cache=True
                    )
            sequence = ids + generated[:-1]
            logits = model(input_ids=torch.tensor([sequence])).logits[0].float().numpy()
            results.append({"ids": ids, "generated": generated, "sequence": sequence, "logits": logits})
    return results


def matched_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


# Max |Δlogit| / max |logit| allowed between llama.cpp and transformers float32. llama.cpp keeps the
# KV cache in f16 and its CPU f16 matmul rounds activations to f16, so even an f32 file lands near
# 1e-3; measured on SmolLM2-135M: f32 0.9-1.2e-3, f16 1.4-1.8e-3; tiny model: f16 5e-4, bf16 2e-3.
# The tolerances leave ~3x headroom and stay far below what a layout bug gives (a missing Q/K
# permutation moves logits by 5-25% of their range).
LOGITS_REL_TOL = {"f32": 5e-3, "f16": 5e-3, "bf16": 2e-2}
# Runtime stacking vs the merged export: f32 LoRA factors on f16 base weights vs f16-rounded
# merged weights; measured 0.7-1.5e-3 on the tiny model.
STACK_REL_TOL = 1e-2

def verify_f16_export(
    model_dir: Path | str,
    gguf_path: Path | str,
    prompts: Sequence[str],
    *,
    n_tokens: int = 32,
    logits_tol: float | None = None,
    n_threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Gate: llama.cpp on the GGUF reproduces transformers on the folder.

    Per prompt: both tokenize the prompt identically; llama.cpp's greedy continuation equals
    transformers' for all n_tokens; and on the teacher-forced sequence (prompt + continuation)
    max |Δlogit| ≤ logits_tol × max |logit| (default by file type, LOGITS_REL_TOL).
    """
    reference = hf_reference(model_dir, prompts, n_tokens)
    longest = max(len(r["ids"]) for r in reference) + n_tokens
    report_prompts = []
    with LlamaRuntime(gguf_path, n_ctx=longest, n_threads=n_threads) as runtime:
        dtype = gguf_dtype_name(gguf_path)
        tol = LOGITS_REL_TOL.get(dtype, LOGITS_REL_TOL["f16"]) if logits_tol is None else logits_tol
        for prompt, ref in zip(prompts, reference, strict=True):
            generated = runtime.greedy(ref["ids"], n_tokens)
            logits = runtime.logits(ref["sequence"])
            scale = float(np.abs(ref["logits"]).max())
            diff = float(np.abs(logits - ref["logits"]).max())
            n_matched = matched_prefix(generated, ref["generated"])
            position = len(ref["ids"]) - 1 + n_matched
            report_prompts.append({
                "prompt": prompt,
                "tokens_match": runtime.tokenize(prompt) == ref["ids"],
                "n_matched": n_matched,
                "reference": ref["generated"],
                "llama": generated,
                "max_abs_logit_diff": diff,
                "rel_logit_diff": diff / scale,
                # a mismatch at a near-tie in the reference says "noise", not "wrong export"
                "reference_gap_at_mismatch": top2_gap(ref["logits"][position]) if n_matched < n_tokens else None,
            })
    ok = all(
        p["tokens_match"] and p["n_matched"] == n_tokens and p["rel_logit_diff"] <= tol for p in report_prompts
    )
    return {"ok": ok, "dtype": dtype, "n_tokens": n_tokens, "logits_rel_tol": tol, "prompts": report_prompts}


def gguf_dtype_name(gguf_path: Path | str) -> str:
    """The GGUF's general.file_type as a lower-case name (f16, q4_k_m, ...)."""
    import gguf

    reader = gguf.GGUFReader(gguf_path)
    field = reader.fields.get(gguf.Keys.General.FILE_TYPE)
    if field is None:
        return "unknown"
    file_type = gguf.LlamaFileType(int(field.parts[field.data[0]][0]))
    return file_type.name.removeprefix("MOSTLY_").removeprefix("ALL_").lower()


def verify_quantized(
    gguf_path: Path | str,
    reference_gguf: Path | str,
    text: str,
    *,
    window: int = 256,
    max_ppl_ratio: float = 1.5,
    min_top1_agreement: float = 0.6,
    n_threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Gate: a quantized GGUF loads and still predicts like its f16 reference on held-out text.

    Both score the same tokens (the reference's tokenization). Passes when perplexity is finite
    and within a factor max_ppl_ratio of the reference's either way (a much lower perplexity is a
    different model too), and the argmax agrees at ≥ min_top1_agreement of positions. The defaults
    catch a broken or wrong file (ratios of 10-1000x), not ordinary quantization loss, which for a
    135M model at 4 bits is a few percent of perplexity.
    """
    with LlamaRuntime(reference_gguf, n_ctx=window, n_threads=n_threads) as reference:
        ids = reference.tokenize(text)
        ref_lp, ref_pred = reference.score(ids, window=window)
    with LlamaRuntime(gguf_path, n_ctx=window, n_threads=n_threads) as runtime:
        lp, pred = runtime.score(ids, window=window)
    agreement = float(np.mean(pred == ref_pred))
    ppl, ref_ppl = float(math.exp(-lp.mean())), float(math.exp(-ref_lp.mean()))
    ratio = ppl / ref_ppl
    return {
        "ok": math.isfinite(ppl) and 1 / max_ppl_ratio <= ratio <= max_ppl_ratio and agreement >= min_top1_agreement,
        "dtype": gguf_dtype_name(gguf_path),
        "ppl": ppl,
        "reference_ppl": ref_ppl,
        "ppl_ratio": ratio,
        "top1_agreement": agreement,
        "n_tokens": int(lp.size),
    }


def verify_runtime_stack(
    base_gguf: Path | str,
    adapters: Sequence[Adapter],
    merged_gguf: Path | str,
    prompts: Sequence[str],
    *,
    n_tokens: int = 32,
    logits_tol: float = STACK_REL_TOL,
    n_threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Gate: base GGUF + adapter GGUFs applied at run time = the merged-then-exported GGUF.

    Per prompt: the same greedy tokens for n_tokens, and on the teacher-forced sequence
    max |Δlogit| ≤ logits_tol × max |logit|. Both are needed: a wrong Q/K layout of an adapter
    can leave greedy tokens intact on a short prompt while moving logits by several percent.
    """
    results = []
    with (
        LlamaRuntime(base_gguf, adapters=adapters, n_threads=n_threads) as stacked,
        LlamaRuntime(merged_gguf, n_threads=n_threads) as merged,
    ):
        for prompt in prompts:
            ids = merged.tokenize(prompt)
            want = merged.greedy(ids, n_tokens)
            got = stacked.greedy(ids, n_tokens)
            sequence = ids + want[:-1]
            ref_logits = merged.logits(sequence)
            diff = float(np.abs(stacked.logits(sequence) - ref_logits).max())
            results.append({
                "prompt": prompt,
                "n_matched": matched_prefix(got, want),
                "merged": want,
                "stacked": got,
                "rel_logit_diff": diff / float(np.abs(ref_logits).max()),
            })
    ok = all(r["n_matched"] == n_tokens and r["rel_logit_diff"] <= logits_tol for r in results)
    return {"ok": ok, "n_tokens": n_tokens, "logits_rel_tol": logits_tol, "prompts": results}

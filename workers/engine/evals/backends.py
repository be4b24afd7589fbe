"""Model backends: the few operations every suite needs, and their transformers implementation.

A suite only tokenizes, asks for the log-likelihood of continuations, and asks for greedy
generations; how a backend batches, pads and caches is its own business. The GGUF backend
(llama-cpp-python) lives in `gguf.py`.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from workers.engine import ENGINE_VERSION
from workers.engine.errors import EngineInputError
from workers.engine.prompts import ChatTokenizer, has_chat_template

# (context tokens, continuation tokens): the log-likelihood of the continuation given the context.
Request = tuple[Sequence[int], Sequence[int]]
AdapterSpec = Path | str | tuple[Path | str, float]


class Backend(Protocol):
    """What a suite needs from a model."""

    max_length: int  # the longest input the model takes
    prefix_token_id: int  # conditions the first token of a document (BOS, else EOS), as lm-eval does
    chat: ChatTokenizer | None  # renders chat prompts with the model's chat template; None when it has none

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        ...

    def loglikelihoods(self, requests: Sequence[Request]) -> list[tuple[float, bool]]:
        """For each request: Σ log p(continuation | context), and whether greedy decoding yields it."""
        ...

    def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, stop: Sequence[str]) -> list[str]:
        """Greedy continuation text of each prompt; may run past a stop string (the caller cuts there)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-safe identity of the model: backend, files, adapters and their weights, dtype."""
        ...


def model_input(context: Sequence[int], continuation: Sequence[int], max_length: int) -> tuple[list[int], int]:
    """The tokens to feed and where the scored logits start, exactly as lm-eval's `_loglikelihood_tokens`.

    The input is (context + continuation) cut to its last max_length + 1 tokens, without the final
    token; logits at positions start..end-1 predict the continuation's tokens.
    """
    if not continuation:
        raise EngineInputError("empty continuation: nothing to score", field="continuation")
    if len(continuation) > max_length:
        raise EngineInputError(f"continuation of {len(continuation)} tokens exceeds max_length {max_length}")
    tokens = (list(context) + list(continuation))[-(max_length + 1) :][:-1]
    return tokens, len(tokens) - len(continuation)


def library_versions() -> dict[str, str | None]:
    """Versions that can change a score, recorded with every result."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "engine": ENGINE_VERSION}
    for dist in ("torch", "transformers", "peft", "llama_cpp_python", "numpy"):
        try:
            versions[dist.removesuffix("_python")] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist.removesuffix("_python")] = None
    return versions


def _adapter_pairs(adapters: Sequence[AdapterSpec]) -> list[tuple[Path, float]]:
    return [(Path(a[0]), float(a[1])) if isinstance(a, tuple) else (Path(a), 1.0) for a in adapters]


class TransformersBackend:
    """A Hugging Face model folder, optionally with PEFT LoRA adapters merged in with weights.

    Each adapter is loaded with PEFT, its scaling multiplied by its weight, and merged into the
    weights, so the model evaluated is W + Σ wᵢ·scalingᵢ·BᵢAᵢ and runs as fast as the base.
    Log-likelihood requests are sorted longest first and batched up to `batch_tokens` tokens.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        adapters: Sequence[AdapterSpec] = (),
        dtype: str = "float32",
        device: str = "cpu",
        batch_tokens: int = 2048,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        self.adapters = _adapter_pairs(adapters)
        self.dtype = dtype
        self.device = device
        self.batch_tokens = batch_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=getattr(torch, dtype))
        for path, weight in self.adapters:
            model = _merge_adapter(model, path, weight)
        self.model = model.to(device).eval()
        config = self.model.config
        self.max_length = int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048))
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        self.prefix_token_id = int(bos if bos is not None else eos)
        self.chat = self.tokenizer if has_chat_template(self.tokenizer) else None

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def loglikelihoods(self, requests: Sequence[Request]) -> list[tuple[float, bool]]:
        import torch

        inputs = [model_input(ctx, cont, self.max_length) for ctx, cont in requests]
        targets = [list(cont) for _, cont in requests]
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0]))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(inputs)
        position = 0
        with torch.inference_mode():
            while position < len(order):
                longest = len(inputs[order[position]][0])
                batch = order[position : position + max(1, self.batch_tokens // longest)]
                position += len(batch)
                # Right padding needs no attention mask: a causal model never attends to later positions.
                ids = torch.full((len(batch), longest), self.prefix_token_id, dtype=torch.long)
                rows, cols, wanted = [], [], []
                for row, index in enumerate(batch):
                    tokens, start = inputs[index]
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    rows += [row] * (len(tokens) - start)
                    cols += range(start, len(tokens))
                    wanted += targets[index]
                logits = self.model(ids.to(self.device)).logits[torch.tensor(rows), torch.tensor(cols)].float()
                wanted_t = torch.tensor(wanted, device=logits.device)
                token_lls = logits.gather(1, wanted_t[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)
                greedy = logits.argmax(dim=-1) == wanted_t
                offset = 0
                for index in batch:
                    n = len(targets[index])
                    chunk = slice(offset, offset + n)
                    results[index] = (float(token_lls[chunk].double().sum()), bool(greedy[chunk].all()))
                    offset += n
        return results

    def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, stop: Sequence[str]) -> list[str]:
        import torch

        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        texts = [""] * len(prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.prefix_token_id
        batch_size = max(1, self.batch_tokens // (len(prompts[order[0]]) + max_new_tokens)) if prompts else 1
        with torch.inference_mode():
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                width = max(len(prompts[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):  # left padding: every prompt ends where generation starts
                    tokens = prompts[index]
                    ids[row, width - len(tokens) :] = torch.tensor(tokens)
                    mask[row, width - len(tokens) :] = 1
                out = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad,
                    stop_strings=list(stop) or None,
                    tokenizer=self.tokenizer,
                )
                for row, index in enumerate(batch):
                    texts[index] = self.tokenizer.decode(out[row, width:], skip_special_tokens=True)
        return texts

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": str(self.model_dir),
            "adapters": [{"path": str(path), "weight": weight} for path, weight in self.adapters],
            "dtype": self.dtype,
            "device": self.device,
            "batch_tokens": self.batch_tokens,  # padding changes float rounding in the last digits
        }


def _merge_adapter(model: Any, path: Path, weight: float) -> Any:
    """Merge weight × (the adapter's delta) into the model with PEFT; return the plain model."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    if not (path / "adapter_config.json").is_file():
        raise EngineInputError("not a PEFT adapter folder (no adapter_config.json)", file=str(path))
    peft_model = PeftModel.from_pretrained(model, path)
    for module in peft_model.modules():
        if isinstance(module, LoraLayer):
            module.scale_layer(weight)  # scaling (incl. rsLoRA's) × weight, so merge adds w·scaling·BA
    return peft_model.merge_and_unload()

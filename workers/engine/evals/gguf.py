"""The GGUF backend: the same suites on llama.cpp (via llama-cpp-python), the hub's runtime format.

One sequence at a time (the high-level binding has one), but each request is decoded in a single
batch of up to max_length tokens, and consecutive requests that share a prefix (the choices of one
multiple-choice item) reuse its KV cache and logits instead of decoding it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.errors import EngineInputError
from workers.engine.evals.backends import Request, model_input


class GGUFChatTemplate:
    """The file's own chat template (metadata `tokenizer.chat_template`, as the GGUF export copies the base's),
    rendered by llama-cpp-python's Jinja2 formatter with the file's BOS and EOS texts, as transformers renders it."""

    def __init__(self, llm: Any) -> None:
        self.chat_template: str | None = llm.metadata.get("tokenizer.chat_template")
        self._special = {name: llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0
                         else "" for name, token in (("bos_token", llm.token_bos()), ("eos_token", llm.token_eos()))}

    def apply_chat_template(self, conversation: list[dict[str, str]], *, tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if tokenize or not self.chat_template:
            raise EngineInputError("the GGUF chat template renders text only, and only when the file has one")
        formatter = Jinja2ChatFormatter(self.chat_template, add_generation_prompt=add_generation_prompt,
                                        **self._special)
        return formatter(messages=conversation).prompt


class GGUFBackend:
    """A GGUF file run by llama-cpp-python on the CPU, with logits kept for every position."""

    def __init__(self, gguf_path: Path | str, *, max_length: int = 2048, n_threads: int | None = None) -> None:
        import llama_cpp

        self.path = Path(gguf_path)
        if not self.path.is_file():
            raise EngineInputError("no such GGUF file", file=str(self.path))
        self.llm = llama_cpp.Llama(
            str(self.path),
            n_ctx=max_length,
            n_batch=max_length,
            n_ubatch=max_length,
            n_threads=n_threads,
            logits_all=True,
            verbose=False,
        )
        # Inputs never exceed the model's training context, even where the context allocated is larger.
        self.max_length = min(max_length, llama_cpp.llama_model_n_ctx_train(self.llm.model))
        bos = self.llm.token_bos()
        self.prefix_token_id = bos if bos >= 0 else self.llm.token_eos()
        template = GGUFChatTemplate(self.llm)
        self.chat = template if template.chat_template else None

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def _feed(self, tokens: Sequence[int]) -> None:
        """Make the context hold exactly `tokens`, decoding only what differs from what it holds."""
        held = self.llm.input_ids[: self.llm.n_tokens]
        keep = 0
        limit = min(len(held), len(tokens) - 1)  # decode at least one token, so the state is fresh
        while keep < limit and held[keep] == tokens[keep]:
            keep += 1
        self.llm.n_tokens = keep  # eval() drops the KV cache past n_tokens before decoding
        self.llm.eval(tokens[keep:])

    def loglikelihoods(self, requests: Sequence[Request]) -> list[tuple[float, bool]]:
        results = []
        for ctx, cont in requests:
            tokens, start = model_input(ctx, cont, self.max_length)
            self._feed(tokens)
            logits = self.llm.scores[start : len(tokens)]  # a view: float32, one row per scored token
            wanted = np.asarray(cont)
            top = logits.max(axis=1)
            lse = top.astype(np.float64) + np.log(np.exp(logits - top[:, None]).sum(axis=1, dtype=np.float64))
            token_lls = logits[np.arange(len(wanted)), wanted] - lse
            results.append((float(token_lls.sum()), bool((logits.argmax(axis=1) == wanted).all())))
        return results

    def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, stop: Sequence[str]) -> list[str]:
        eos = self.llm.token_eos()
        texts = []
        for prompt in prompts:
            new: list[int] = []
            text = ""
            self._feed(prompt)
            for _ in range(max_new_tokens):
                token = int(self.llm.scores[self.llm.n_tokens - 1].argmax())
                if token == eos:
                    break
                new.append(token)
                text = self.llm.detokenize(new).decode("utf-8", errors="replace")
                if any(s in text for s in stop):
                    break
                self.llm.eval([token])
            texts.append(text)
        return texts

    def describe(self) -> dict[str, Any]:
        file_type = self.llm.metadata.get("general.file_type")
        return {"backend": "gguf", "model": str(self.path), "file_type": file_type, "adapters": []}

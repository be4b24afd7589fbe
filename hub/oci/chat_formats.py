"""The chat formats the OCI registry can give an Ollama client: a base model's format, recognised, as Ollama's template.

Nothing is translated from Jinja. A base model's chat template (tokenizer_config.json's `chat_template`, or its
`chat_template.jinja`) is recognised by the special tokens of a known chat format, and that format is written as the
Go template Ollama itself publishes for the family (github.com/ollama/ollama, `template/<name>.gotmpl`), with the stop
tokens of its params (`template/<name>.json`). A template of no known format gets no template layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChatFormat:
    name: str  # Ollama's name for the family (template/<name>.gotmpl)
    markers: tuple[str, ...]  # special tokens every Jinja chat template of the family writes
    template: str  # Ollama's Go template: messages in, the prompt for the next assistant turn out
    stop: tuple[str, ...]  # where generation stops: the family's turn boundaries


CHAT_FORMATS = (
    ChatFormat(
        "llama3-instruct", ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n"
        "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    ChatFormat(
        "chatml", ("<|im_start|>", "<|im_end|>"),
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    ChatFormat(
        "phi-3", ("<|user|>", "<|assistant|>", "<|end|>"),
        "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
        ("<|end|>", "<|system|>", "<|user|>", "<|assistant|>"),
    ),
)


def default_chat_template(value: Any) -> str:
    """The chat template a tokenizer_config.json's `chat_template` holds: a string, or the one named `default` of a
    list of {name, template} ("" when there is none)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        chosen = named.get("default")
        return chosen if isinstance(chosen, str) else ""
    return ""


def chat_format_of(chat_template: str) -> ChatFormat | None:
    """The known chat format a Jinja chat template writes, or None (no template, or a format Ollama's list lacks)."""
    return next((f for f in CHAT_FORMATS if all(marker in chat_template for marker in f.markers)), None)

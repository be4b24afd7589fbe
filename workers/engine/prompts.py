"""The one prompt format of training and evaluation: a dataset row as (prompt, response) for a model's tokenizer.

An adapter is evaluated on the prompts it was trained on: `workers.engine.training` learns what `row_prompt` gives,
and the task suites of `workers.engine.evals` build their prompts with the same function on the evaluated model's
tokenizer. Row shapes are those of `workers.engine.datasets`.

- chat: the messages before the last assistant message, rendered by the tokenizer's chat template with its
  generation prompt; the response is what the template renders for the reply after that prompt (its end-of-turn
  markup included). A tokenizer without a chat template gets the plain format: a "role: content" line per message,
  then "assistant:", and the reply's content.
- instruction: the prompt and the response as written (completions, e.g. "Convert 3 km to m:" and " 3000 m").
- multiple choice: lm-evaluation-harness' format ("Question: …\\nAnswer:", the context first when there is one),
  and the right choice after a space (the continuation each choice is scored as).
- text: no prompt; the text is all response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from workers.engine.datasets import chat_turns, choice_answer, row_format
from workers.engine.errors import EngineInputError

TARGET_DELIMITER = " "  # between a multiple-choice prompt and each choice, as lm-eval's target_delimiter


class ChatTokenizer(Protocol):
    """What renders chat messages: a transformers tokenizer, or the GGUF backend's template of the file's metadata."""

    chat_template: Any

    def apply_chat_template(self, conversation: list[dict[str, str]], *, tokenize: bool,
                            add_generation_prompt: bool) -> str: ...


@dataclass(frozen=True)
class PromptPair:
    prompt: str
    response: str
    ends_turn: bool = False  # the response carries the chat template's end of turn (a trainer appends no EOS)


def has_chat_template(tokenizer: object) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def choice_context(row: Mapping[str, Any]) -> str:
    """The prompt of a multiple-choice row: its question (or prompt) after its context."""
    question, context = row.get("question") or row.get("prompt", ""), row.get("context", "")
    if question and context:
        return f"{context}\nQuestion: {question}\nAnswer:"
    if question:
        return f"Question: {question}\nAnswer:"
    return context  # a bare context is continued directly, as in HellaSwag-style items


def row_prompt(row: Mapping[str, Any], tokenizer: ChatTokenizer | None = None) -> PromptPair:
    """(prompt, response) of one well-formed dataset row for `tokenizer` (None: the plain format); raises
    EngineInputError when the row is not well formed or the chat template refuses it."""
    shape, problem = row_format(row)
    if shape is None:
        raise EngineInputError(problem)
    if shape == "chat":
        asked, reply = chat_turns(row["messages"])
        if not has_chat_template(tokenizer):
            plain = "".join(f"{m['role']}: {m['content']}\n" for m in asked) + "assistant:"
            return PromptPair(plain, reply["content"])
        return _templated(tokenizer, asked, reply)
    if shape == "instruction":
        return PromptPair(row["prompt"], row["response"])
    if shape == "multiple_choice":
        return PromptPair(choice_context(row), TARGET_DELIMITER + row["choices"][choice_answer(row)])
    return PromptPair("", row["text"])


def _templated(tokenizer: ChatTokenizer, asked: Sequence[dict[str, str]], reply: dict[str, str]) -> PromptPair:
    try:
        prompt = tokenizer.apply_chat_template(list(asked), tokenize=False, add_generation_prompt=True) if asked else ""
        full = tokenizer.apply_chat_template([*asked, reply], tokenize=False, add_generation_prompt=False)
    except Exception as exc:  # a template that refuses a role order raises its own TemplateError
        raise EngineInputError(f"the base model's chat template cannot render this row ({exc})") from None
    if not full.startswith(prompt):
        raise EngineInputError("the chat template does not render the conversation as its prompt followed by the "
                               "reply")
    return PromptPair(prompt, full[len(prompt):], ends_turn=True)

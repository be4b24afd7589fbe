"""Task suites from hub datasets: multiple-choice items scored by log-likelihood ranking, and
generation items scored by exact match after named normalizations.

Rows are the dataset's JSONL objects:

- multiple choice: {"question" and/or "context": str, "choices": [str, ...], "answer": index}
- generation: {"prompt": str, "answer": str or [str, ...]}, or a chat conversation {"messages": [...], "answer": ...}
  whose prompt is rendered at run time for the evaluated model (`workers.engine.prompts.row_prompt`, the format
  training uses: the model's chat template when it has one)
- either may carry an "id" (str or int); otherwise the row's position is its id.

Scoring follows lm-evaluation-harness. A choice is scored as the continuation " " + choice after
the item's text; `acc` picks the highest log-likelihood, `acc_norm` the highest log-likelihood per
character of the choice (lm-eval's `multiple_choice` process_results, ties to the first). Stderr is
the sample standard error of the mean. A suite's version names its scoring method and a digest of
its items and settings, so a different dataset or method never shares cached scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workers.engine.datasets import row_format
from workers.engine.errors import EngineInputError
from workers.engine.evals.backends import Backend
from workers.engine.evals.scoring import check_normalizations, mean, mean_stderr, metric, normalize
from workers.engine.prompts import TARGET_DELIMITER, ChatTokenizer, choice_context, row_prompt

# Bump when the way a task score is computed (prompt format, scoring rule) changes.
MULTIPLE_CHOICE_METHOD_VERSION = "1"
GENERATION_METHOD_VERSION = "1"
DEFAULT_NORMALIZE = ("strip", "lower", "strip_punctuation")


@dataclass(frozen=True)
class ChoiceItem:
    id: str
    context: str  # the text the choices continue, prompt format already applied
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class GenerationItem:
    id: str
    prompt: str  # "" for a chat item: its messages are rendered for the evaluated model's tokenizer
    answers: tuple[str, ...]  # any of them counts as correct
    messages: tuple[dict[str, str], ...] = ()  # a chat item's conversation, up to the reply it is scored on

    def prompt_for(self, chat: ChatTokenizer | None) -> str:
        """The prompt as training formats the same row (`row_prompt`): the model's chat template, if it has one."""
        return row_prompt({"messages": list(self.messages)}, chat).prompt if self.messages else self.prompt


def encode_pair(backend: Backend, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation tokens as lm-eval's `_encode_pair`: trailing spaces of the context move to
    the continuation, and the continuation's tokens are those of the whole text after the context's."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    if not context:
        return [backend.prefix_token_id], backend.tokenize(continuation)
    context_tokens = backend.tokenize(context)
    return context_tokens, backend.tokenize(context + continuation)[len(context_tokens) :]


@dataclass(frozen=True)
class MultipleChoiceSuite:
    id: str
    version: str
    items: tuple[ChoiceItem, ...]
    kind: str = "multiple_choice"

    def describe(self) -> dict[str, Any]:
        params = {"target_delimiter": TARGET_DELIMITER, "items": len(self.items), "method": "lm-eval multiple_choice"}
        return {"id": self.id, "version": self.version, "kind": self.kind, "params": params}

    def settings(self, backend: Backend) -> dict[str, Any]:
        return {"max_length": backend.max_length}

    def run(self, backend: Backend) -> list[dict[str, Any]]:
        """One record per item, with every choice's log-likelihood; all choices go to the backend at once."""
        requests = [
            encode_pair(backend, item.context, TARGET_DELIMITER + choice)
            for item in self.items
            for choice in item.choices
        ]
        scores = iter(backend.loglikelihoods(requests))
        records = []
        for item in self.items:
            lls, greedy = zip(*(next(scores) for _ in item.choices), strict=True)
            lengths = [len(choice) for choice in item.choices]
            pred = max(range(len(lls)), key=lambda i: lls[i])
            pred_norm = max(range(len(lls)), key=lambda i: lls[i] / lengths[i])
            records.append(
                {
                    "id": item.id,
                    "input": item.context,
                    "choices": list(item.choices),
                    "answer": item.answer,
                    "loglikelihoods": list(lls),
                    "greedy": list(greedy),
                    "prediction": pred,
                    "prediction_norm": pred_norm,
                    "correct": pred == item.answer,
                    "correct_norm": pred_norm == item.answer,
                }
            )
        return records

    def metrics(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        acc = [float(r["correct"]) for r in records]
        acc_norm = [float(r["correct_norm"]) for r in records]
        return {
            "acc": metric(mean(acc), mean_stderr(acc), higher_is_better=True),
            "acc_norm": metric(mean(acc_norm), mean_stderr(acc_norm), higher_is_better=True),
        }


@dataclass(frozen=True)
class GenerationSuite:
    id: str
    version: str
    items: tuple[GenerationItem, ...]
    normalize: tuple[str, ...] = DEFAULT_NORMALIZE
    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 32
    kind: str = "generation"

    def describe(self) -> dict[str, Any]:
        params = {
            "normalize": list(self.normalize),
            "stop": list(self.stop),
            "max_new_tokens": self.max_new_tokens,
            "decoding": "greedy",
            "items": len(self.items),
        }
        return {"id": self.id, "version": self.version, "kind": self.kind, "params": params}

    def settings(self, backend: Backend) -> dict[str, Any]:
        return {"max_length": backend.max_length}

    def run(self, backend: Backend) -> list[dict[str, Any]]:
        """Greedy generation cut at the first stop string; correct if it equals an answer once both are normalized."""
        room = backend.max_length - self.max_new_tokens  # as lm-eval, the prompt keeps its last tokens
        texts = [item.prompt_for(backend.chat) for item in self.items]
        prompts = [backend.tokenize(text)[-room:] for text in texts]
        outputs = backend.generate(prompts, max_new_tokens=self.max_new_tokens, stop=self.stop)
        records = []
        for item, text, output in zip(self.items, texts, outputs, strict=True):
            cut = min([output.find(s) for s in self.stop if s in output], default=len(output))
            prediction = normalize(output[:cut], self.normalize)
            records.append(
                {
                    "id": item.id,
                    "input": text,
                    "answers": list(item.answers),
                    "output": output[:cut],
                    "prediction": prediction,
                    "correct": prediction in {normalize(answer, self.normalize) for answer in item.answers},
                }
            )
        return records

    def metrics(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        exact = [float(r["correct"]) for r in records]
        return {"exact_match": metric(mean(exact), mean_stderr(exact), higher_is_better=True)}


def task_suite(
    suite_id: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    normalize: Sequence[str] = DEFAULT_NORMALIZE,
    stop: Sequence[str] = ("\n",),
    max_new_tokens: int = 32,
) -> MultipleChoiceSuite | GenerationSuite:
    """A suite from a dataset's rows: multiple choice if rows have "choices", generation if "prompt".

    `normalize`, `stop` and `max_new_tokens` apply to generation suites only. Raises
    EngineInputError naming the row for anything malformed or a mix of the two kinds.
    """
    rows = list(rows)
    if not rows:
        raise EngineInputError("a task suite needs at least one row", field="rows")
    kinds = {_row_kind(i, row) for i, row in enumerate(rows)}
    if len(kinds) > 1:
        raise EngineInputError("rows mix multiple-choice and generation items", field="rows")
    ids = [_row_id(i, row) for i, row in enumerate(rows)]
    if len(set(ids)) != len(ids):
        raise EngineInputError("row ids must be unique", field="id")
    if kinds == {"multiple_choice"}:
        items = tuple(_choice_item(i, item_id, row) for i, (item_id, row) in enumerate(zip(ids, rows, strict=True)))
        version = f"mc{MULTIPLE_CHOICE_METHOD_VERSION}+{_digest([asdict(item) for item in items])}"
        return MultipleChoiceSuite(id=suite_id, version=version, items=items)
    gen_items = tuple(_generation_item(i, item_id, row) for i, (item_id, row) in enumerate(zip(ids, rows, strict=True)))
    names = check_normalizations(normalize)
    if max_new_tokens < 1:
        raise EngineInputError("max_new_tokens must be at least 1", field="max_new_tokens")
    settings = {"normalize": names, "stop": list(stop), "max_new_tokens": max_new_tokens}
    # Items without messages digest as they did before chat items existed: their cached scores stay valid.
    digested = [{k: v for k, v in asdict(item).items() if k != "messages" or v} for item in gen_items]
    version = f"gen{GENERATION_METHOD_VERSION}+{_digest([digested, settings])}"
    return GenerationSuite(
        id=suite_id, version=version, items=gen_items, normalize=names, stop=tuple(stop), max_new_tokens=max_new_tokens
    )


def _digest(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _row_kind(index: int, row: Any) -> str:
    if not isinstance(row, Mapping):
        raise EngineInputError("each row must be a JSON object", field=f"row {index}")
    if "choices" in row:
        return "multiple_choice"
    if "prompt" in row or "messages" in row:
        return "generation"
    raise EngineInputError('a row needs "choices" (multiple choice), or "prompt" or "messages" (generation)',
                           field=f"row {index}")


def _row_id(index: int, row: Mapping[str, Any]) -> str:
    item_id = row.get("id", index)
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        raise EngineInputError("id must be a string or an integer", field=f"row {index}.id")
    return str(item_id)


def _choice_item(index: int, item_id: str, row: Mapping[str, Any]) -> ChoiceItem:
    where = f"row {index}"
    for key in ("question", "context"):
        if not isinstance(row.get(key, ""), str):
            raise EngineInputError("must be a string", field=f"{where}.{key}")
    if not (row.get("question") or row.get("context")):
        raise EngineInputError('needs a non-empty "question" or "context"', field=where)
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise EngineInputError("must be a list of at least two non-empty strings", field=f"{where}.choices")
    answer = row.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise EngineInputError(
            f"must be the index of the right choice, 0 to {len(choices) - 1}", field=f"{where}.answer"
        )
    return ChoiceItem(id=item_id, context=choice_context(row), choices=tuple(choices), answer=answer)


def _generation_item(index: int, item_id: str, row: Mapping[str, Any]) -> GenerationItem:
    where = f"row {index}"
    messages = row.get("messages")
    if messages is not None:
        shape, problem = row_format({"messages": messages})
        if shape != "chat":
            raise EngineInputError(f"must be a chat conversation ({problem})", field=f"{where}.messages")
        messages = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    prompt = row.get("prompt", "")
    if messages is None and (not isinstance(prompt, str) or not prompt):
        raise EngineInputError("must be a non-empty string", field=f"{where}.prompt")
    answer = row.get("answer")
    answers = [answer] if isinstance(answer, str) else answer
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise EngineInputError("must be a string or a non-empty list of strings", field=f"{where}.answer")
    return GenerationItem(id=item_id, prompt="" if messages else prompt, answers=tuple(answers), messages=messages or ())

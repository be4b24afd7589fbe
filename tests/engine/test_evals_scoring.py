"""Evaluation engine without a model: windows, scoring rules, suites and results, against a stub backend."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest

from workers.engine.errors import EngineInputError
from workers.engine.evals import (
    GENERAL_DOC_KEYS,
    Document,
    builtin_suite,
    encode_pair,
    general_perplexity_suite,
    model_input,
    normalize,
    perplexity_suite,
    retention,
    rolling_windows,
    run_suite,
    stacking_score,
    stacking_summary,
    task_suite,
)


class StubBackend:
    """Characters are tokens; a continuation's log-likelihood comes from a table keyed by its text."""

    max_length = 64
    prefix_token_id = 0
    chat = None  # no chat template: chat items get the plain format

    def __init__(self, scores: dict[str, float] | None = None, outputs: dict[str, str] | None = None) -> None:
        self.scores = scores or {}
        self.outputs = outputs or {}
        self.requests: list[tuple[str, str]] = []

    def tokenize(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]

    def _text(self, tokens: Sequence[int]) -> str:
        return "".join(chr(t) for t in tokens)

    def loglikelihoods(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        self.requests += [(self._text(ctx), self._text(cont)) for ctx, cont in requests]
        return [(self.scores.get(self._text(cont), -float(len(cont))), False) for _, cont in requests]

    def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, stop: Sequence[str]) -> list[str]:
        return [self.outputs[self._text(p)] for p in prompts]

    def describe(self) -> dict[str, Any]:
        return {"backend": "stub"}


def test_rolling_windows_equal_lm_eval_reference_windows() -> None:
    """lm-eval's own test case (34 tokens, max_seq_len 10), after make_disjoint_window."""
    windows = rolling_windows(list(range(34)), prefix_token=-100, max_length=10)
    assert windows == [
        ([-100], list(range(0, 10))),
        ([9], list(range(10, 20))),
        ([19], list(range(20, 30))),
        (list(range(23, 30)), list(range(30, 34))),
    ]
    # Fed to the model, each is at most max_length tokens and every token is predicted exactly once.
    inputs = [model_input(ctx, cont, 10) for ctx, cont in windows]
    assert [tokens for tokens, _ in inputs][-1] == list(range(23, 33))
    assert all(len(tokens) <= 10 for tokens, _ in inputs)
    assert [t for _, cont in windows for t in cont] == list(range(34))
    assert rolling_windows([5, 6], prefix_token=1, max_length=10) == [([1], [5, 6])]
    assert rolling_windows([], prefix_token=1, max_length=10) == []


def test_perplexity_metrics_follow_lm_eval_aggregation() -> None:
    docs = [Document("a", "one two three"), Document("b", "four  five")]
    backend = StubBackend()  # every token scores -1, so each document's log-likelihood is -len(text)
    result = run_suite(perplexity_suite("stub-ppl", docs, max_length=4), backend)
    lls = [-13.0, -10.0]
    words, nbytes = [3, 2], [13, 10]
    metrics = result["metrics"]
    assert [r["loglikelihood"] for r in result["records"]] == lls
    assert metrics["word_perplexity"]["value"] == pytest.approx(math.exp(23 / sum(words)))
    assert metrics["byte_perplexity"]["value"] == pytest.approx(math.exp(23 / sum(nbytes)))
    assert metrics["bits_per_byte"]["value"] == pytest.approx(23 / sum(nbytes) / math.log(2))
    assert result["settings"] == {"max_length": 4}
    assert [r["windows"] for r in result["records"]] == [4, 3]


def test_acc_and_acc_norm_equal_hand_computed_values() -> None:
    rows = [
        # acc picks the short choice; per character the long one wins, and it is the answer.
        {"question": "q1", "choices": ["a", "bbbbbbbb"], "answer": 1},
        {"question": "q2", "choices": ["yes", "no"], "answer": 0},
        # acc is right; per character "elephant" wins, so acc_norm is wrong.
        {"question": "q3", "choices": ["cat", "elephant"], "answer": 0},
        {"context": "The sky is", "choices": ["green", "blue"], "answer": 1},
    ]
    scores = {
        " a": -2.0, " bbbbbbbb": -8.0,
        " yes": -1.0, " no": -3.0,
        " cat": -3.0, " elephant": -6.0,
        " green": -1.0, " blue": -4.0,
    }  # fmt: skip
    backend = StubBackend(scores)
    suite = task_suite("task:stub", rows)
    result = run_suite(suite, backend, seed=7)
    records = result["records"]
    # By hand: acc argmax = [0, 0, 0, 0]; acc_norm argmax of ll/len(choice) = [1, 0, 1, 0].
    assert [r["prediction"] for r in records] == [0, 0, 0, 0]
    assert [r["prediction_norm"] for r in records] == [1, 0, 1, 0]
    assert [r["correct"] for r in records] == [False, True, True, False]
    assert [r["correct_norm"] for r in records] == [True, True, False, False]
    stderr = math.sqrt((4 * 0.25) / 3) / 2  # sample std of [0, 1, 1, 0] over √4
    assert result["metrics"]["acc"] == {"value": 0.5, "stderr": pytest.approx(stderr), "higher_is_better": True}
    assert result["metrics"]["acc_norm"]["value"] == 0.5
    assert records[0]["loglikelihoods"] == [-2.0, -8.0]
    # The prompt format and the " " target delimiter reach the model.
    assert backend.requests[0] == ("Question: q1\nAnswer:", " a")
    assert backend.requests[-1] == ("The sky is", " blue")
    assert result["seed"] == 7 and result["suite"]["version"].startswith("mc1+")


def test_encode_pair_moves_trailing_space_to_continuation() -> None:
    backend = StubBackend()
    assert encode_pair(backend, "Answer: ", "x") == (backend.tokenize("Answer:"), backend.tokenize(" x"))
    assert encode_pair(backend, "", "x") == ([0], backend.tokenize("x"))


def test_generation_exact_match_after_declared_normalizations() -> None:
    rows = [
        {"prompt": "Capital of France?", "answer": "Paris"},
        {"prompt": "2+2=", "answer": ["4", "four"]},
        {"prompt": "Color?", "answer": "red"},
    ]
    outputs = {"Capital of France?": "  PARIS.\nMore text", "2+2=": " Four!", "Color?": " blue"}
    result = run_suite(task_suite("task:gen", rows), StubBackend(outputs=outputs))
    assert [r["output"] for r in result["records"]] == ["  PARIS.", " Four!", " blue"]
    assert [r["prediction"] for r in result["records"]] == ["paris", "four", "blue"]
    assert result["metrics"]["exact_match"]["value"] == pytest.approx(2 / 3)
    assert result["suite"]["params"]["normalize"] == ["strip", "lower", "strip_punctuation"]
    # Without normalization nothing matches.
    strict = run_suite(task_suite("task:gen", rows, normalize=()), StubBackend(outputs=outputs))
    assert strict["metrics"]["exact_match"]["value"] == 0.0
    assert strict["suite"]["version"] != result["suite"]["version"]
    assert normalize(" A, b ", ["collapse_whitespace", "strip_punctuation"]) == "A b"


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "rows"),
        ([{"question": "q", "choices": ["a"], "answer": 0}], "row 0.choices"),
        ([{"question": "q", "choices": ["a", "b"], "answer": 2}], "row 0.answer"),
        ([{"question": "q", "choices": ["a", "b"], "answer": True}], "row 0.answer"),
        ([{"choices": ["a", "b"], "answer": 0}], "row 0"),
        ([{"prompt": "p", "answer": 3}], "row 0.answer"),
        ([{"prompt": "p", "answer": "a"}, {"question": "q", "choices": ["a", "b"], "answer": 0}], "rows"),
        ([{"prompt": "p", "answer": "a", "id": 1}, {"prompt": "q", "answer": "b", "id": "1"}], "id"),
        (["not an object"], "row 0"),
    ],
)
def test_task_suite_rejects_malformed_rows(rows: list[Any], field: str) -> None:
    with pytest.raises(EngineInputError) as info:
        task_suite("task:bad", rows)
    assert info.value.field == field


def test_task_suite_version_follows_content() -> None:
    rows = [{"question": "q", "choices": ["a", "b"], "answer": 0}]
    assert task_suite("x", rows).version == task_suite("x", [dict(rows[0])]).version
    assert task_suite("x", rows).version != task_suite("x", [{**rows[0], "answer": 1}]).version
    with pytest.raises(EngineInputError):
        task_suite("x", [{"prompt": "p", "answer": "a"}], normalize=["uppercase"])


def test_general_suite_is_fixed_and_versioned_by_its_corpus() -> None:
    suite = builtin_suite("general-perplexity")
    assert [doc.id for doc in suite.documents] == list(GENERAL_DOC_KEYS)
    assert suite.version == general_perplexity_suite().version
    method, digest = suite.version.split("+")
    assert method == "1" and digest == suite.describe()["params"]["corpus_sha256"][:12]
    changed = (Document(suite.documents[0].id, suite.documents[0].text + "."), *suite.documents[1:])
    assert perplexity_suite(suite.id, changed, max_length=1024).version != suite.version
    with pytest.raises(EngineInputError):
        builtin_suite("general-perplexity", "0+000000000000")
    with pytest.raises(EngineInputError):
        builtin_suite("no-such-suite")


def test_result_is_strict_json_and_says_how_it_was_made() -> None:
    docs = [Document("a", "x" * 2000)]  # every token at -1 nat: word perplexity e^2000 overflows a float
    result = run_suite(perplexity_suite("stub-ppl", docs, max_length=8), StubBackend(), seed=3)
    assert result["metrics"]["word_perplexity"]["value"] is None  # stays strict JSON
    json.dumps(result, allow_nan=False)
    assert {"torch", "transformers", "peft", "llama_cpp", "python", "engine"} <= set(result["versions"])
    assert result["suite"]["id"] == "stub-ppl" and result["seed"] == 3 and result["model"] == {"backend": "stub"}


def _ppl_result(bpb: float, word_ppl: float | None, byte_ppl: float, version: str = "1+abc") -> dict[str, Any]:
    metrics = {"bits_per_byte": bpb, "word_perplexity": word_ppl, "byte_perplexity": byte_ppl}
    return {
        "suite": {"id": "general-perplexity", "version": version},
        "settings": {"max_length": 1024},
        "metrics": {name: {"value": value} for name, value in metrics.items()},
    }


def test_retention_compares_an_adapter_with_its_base() -> None:
    base, adapter = _ppl_result(1.0, 20.0, 2.0), _ppl_result(1.25, 30.0, 2.5)
    assert retention(adapter, base) == {
        "suite": {"id": "general-perplexity", "version": "1+abc"},
        "retention": 0.8,
        "bits_per_byte_delta": 0.25,
        "word_perplexity_ratio": 1.5,
        "byte_perplexity_ratio": 1.25,
    }
    assert retention(_ppl_result(1.25, None, 2.5), base)["word_perplexity_ratio"] is None
    with pytest.raises(EngineInputError):
        retention(_ppl_result(1.0, 20.0, 2.0, version="2+abc"), base)


def test_stacking_score_arithmetic_and_guards() -> None:
    assert stacking_score(base=0.5, alone=0.9, stacked=0.8) == pytest.approx(0.75)
    assert stacking_score(base=0.5, alone=0.9, stacked=0.4) == pytest.approx(-0.25)
    assert stacking_score(base=0.5, alone=0.9, stacked=1.0) == pytest.approx(1.25)
    # Lower is better (e.g. perplexity): 10 → 6 alone, 10 → 8 stacked keeps half the gain.
    assert stacking_score(base=10.0, alone=6.0, stacked=8.0, higher_is_better=False) == pytest.approx(0.5)
    assert stacking_score(base=0.5, alone=0.5, stacked=0.8) is None  # no gain alone
    assert stacking_score(base=0.5, alone=0.4, stacked=0.8) is None  # worse alone
    assert stacking_score(base=0.5, alone=0.55, stacked=0.6, min_gain=0.1) is None  # within noise
    summary = stacking_summary(
        {"a": 0.25, "b": 0.25, "c": 0.25}, {"a": 0.75, "b": 0.5, "c": 0.25}, {"a": 0.5, "b": 0.5, "c": 0.5}
    )
    assert summary == {"per_adapter": {"a": 0.5, "b": 1.0, "c": None}, "mean": 0.75, "min": 0.5}
    with pytest.raises(EngineInputError):
        stacking_summary({"a": 0.1}, {"b": 0.2}, {"a": 0.3})

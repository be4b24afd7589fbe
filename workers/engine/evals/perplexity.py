"""Perplexity suites: rolling log-likelihood of whole documents, as lm-evaluation-harness scores wikitext.

Each document is tokenized whole and cut into disjoint windows of max_length predicted tokens; the
first window is conditioned on the prefix token (BOS), every later one on the token before it (or,
for the last window, on as much preceding text as fits). That is lm-eval's `get_rolling_token_windows`
with context_len=1 followed by `make_disjoint_window`. Scores are lm-eval's word_perplexity,
byte_perplexity and bits_per_byte, aggregated over the corpus (not averaged per document).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workers.engine.errors import EngineInputError
from workers.engine.evals.backends import Backend
from workers.engine.evals.corpus import Document, corpus_sha256, pydoc_documents
from workers.engine.evals.scoring import bits_per_byte, count_bytes, count_words, metric, weighted_perplexity

# Bump when the way a perplexity score is computed changes; it leads every perplexity suite's version.
PERPLEXITY_METHOD_VERSION = "1"


def rolling_windows(tokens: Sequence[int], *, prefix_token: int, max_length: int) -> list[tuple[list[int], list[int]]]:
    """(context, continuation) pairs that predict every token of `tokens` exactly once.

    Equal to lm-eval's `map(make_disjoint_window, get_rolling_token_windows(tokens, prefix_token,
    max_length, context_len=1))`; fed through `model_input`, each becomes at most max_length tokens.
    """
    windows = []
    for start in range(0, len(tokens), max_length):
        end = min(start + max_length, len(tokens))
        context = [prefix_token] if start == 0 else list(tokens[end - max_length - 1 : start])
        windows.append((context, list(tokens[start:end])))
    return windows


@dataclass(frozen=True)
class PerplexitySuite:
    """A fixed list of documents scored by rolling log-likelihood in windows of up to max_length tokens."""

    id: str
    version: str
    documents: tuple[Document, ...]
    max_length: int = 2048
    kind: str = "perplexity"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "params": {
                "max_length": self.max_length,
                "documents": [doc.id for doc in self.documents],
                "corpus_sha256": corpus_sha256(self.documents),
                "method": "lm-eval loglikelihood_rolling, context_len=1",
            },
        }

    def settings(self, backend: Backend) -> dict[str, Any]:
        """The window actually used: the suite's max_length, or less where the model's context is shorter."""
        return {"max_length": min(self.max_length, backend.max_length)}

    def run(self, backend: Backend) -> list[dict[str, Any]]:
        """One record per document; all windows of all documents go to the backend as one batch of requests."""
        max_length = self.settings(backend)["max_length"]
        requests, owners, records = [], [], []
        for index, doc in enumerate(self.documents):
            tokens = backend.tokenize(doc.text)
            windows = rolling_windows(tokens, prefix_token=backend.prefix_token_id, max_length=max_length)
            requests += windows
            owners += [index] * len(windows)
            records.append(
                {
                    "id": doc.id,
                    "tokens": len(tokens),
                    "windows": len(windows),
                    "words": count_words(doc.text),
                    "bytes": count_bytes(doc.text),
                    "loglikelihood": 0.0,
                }
            )
        for owner, (ll, _greedy) in zip(owners, backend.loglikelihoods(requests), strict=True):
            records[owner]["loglikelihood"] += ll
        return records

    def metrics(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Corpus-level scores. No stderr: lm-eval reports none for these weighted aggregates either."""
        by_words = [(r["loglikelihood"], r["words"]) for r in records]
        by_bytes = [(r["loglikelihood"], r["bytes"]) for r in records]
        return {
            "word_perplexity": metric(weighted_perplexity(by_words), None, higher_is_better=False),
            "byte_perplexity": metric(weighted_perplexity(by_bytes), None, higher_is_better=False),
            "bits_per_byte": metric(bits_per_byte(by_bytes), None, higher_is_better=False),
        }


def perplexity_suite(
    suite_id: str,
    documents: Sequence[Document],
    *,
    max_length: int = 2048,
    method_version: str = PERPLEXITY_METHOD_VERSION,
) -> PerplexitySuite:
    """A perplexity suite whose version names the method and the exact corpus (so it changes with either)."""
    if not documents or any(not doc.text for doc in documents):
        raise EngineInputError("a perplexity suite needs documents, none of them empty", field="documents")
    if len({doc.id for doc in documents}) != len(documents):
        raise EngineInputError("document ids must be unique", field="documents")
    docs = tuple(documents)
    return PerplexitySuite(
        id=suite_id, version=f"{method_version}+{corpus_sha256(docs)[:12]}", documents=docs, max_length=max_length
    )


GENERAL_PERPLEXITY_ID = "general-perplexity"


def general_perplexity_suite() -> PerplexitySuite:
    """The hub's retention suite: the fixed pydoc corpus in windows of 1024 tokens."""
    return perplexity_suite(GENERAL_PERPLEXITY_ID, pydoc_documents(), max_length=1024)

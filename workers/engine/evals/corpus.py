"""The general-perplexity corpus: English prose that ships with CPython, so no download is ever needed.

The documents are whole topics of `pydoc_data.topics` (the text behind `help("assert")` and friends),
picked by key. The list below is fixed: changing it, or a Python release rewording one of these
topics, changes `corpus_sha256()`, which is part of the suite version, so cached scores of the old
text are never compared with scores of the new one.

The tiny test tokenizer was trained on all of pydoc's topics; that is fine for tests (it only makes
tokenization efficient) and irrelevant for real models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# 16 prose-heavy topics of 0.9 to 6.3 kB each (about 44 kB in all), stable across Python 3.11 to 3.13.
GENERAL_DOC_KEYS: tuple[str, ...] = (
    "assert",
    "async",
    "augassign",
    "binary",
    "booleans",
    "class",
    "context-managers",
    "dict",
    "exceptions",
    "for",
    "global",
    "naming",
    "objects",
    "raise",
    "truth",
    "with",
)


@dataclass(frozen=True)
class Document:
    """One perplexity document: a stable id and its text."""

    id: str
    text: str


def pydoc_documents(keys: tuple[str, ...] = GENERAL_DOC_KEYS) -> tuple[Document, ...]:
    """The given pydoc topics as documents, in the given order, surrounding whitespace stripped."""
    from pydoc_data.topics import topics

    missing = [key for key in keys if key not in topics]
    if missing:
        raise LookupError(f"pydoc_data.topics lacks {missing}: this Python's help text differs from the suite's")
    return tuple(Document(id=key, text=topics[key].strip()) for key in keys)


def corpus_sha256(documents: tuple[Document, ...]) -> str:
    """A digest of ids and texts, so any change to the corpus shows in the suite version."""
    digest = hashlib.sha256()
    for doc in documents:
        for part in (doc.id, doc.text):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()

"""Text overlap between rows: normalised 13-grams (as lm-evaluation-harness decontaminates) and MinHash near duplicates.

Two measures, one home, used by the data report (duplicates and train/test leakage inside a dataset) and by the
hub's contamination check (a training dataset against an evaluation set):

- 13-gram overlap: text is normalised as lm-evaluation-harness's Janitor does (ASCII letters lower-cased, ASCII
  punctuation deleted, split on whitespace); an eval row is contaminated when one of its 13-grams occurs in the
  training text. A row shorter than 13 words has no 13-gram (the harness never flags it); here its whole normalised
  text counts as its one gram, so a short eval row copied verbatim into training data is still caught.
- Near duplicates: MinHash signatures (datasketch's MinHash, `update_batch` over word 3-shingles) banded as
  datasketch's MinHashLSH bands them for the threshold, with the bands kept as numpy arrays rather than Python sets,
  so a million rows take a few hundred bytes each; every candidate pair is confirmed by its estimated Jaccard.
"""

from __future__ import annotations

import hashlib
import string
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

CONTAMINATION_VERSION = "1"
NGRAM_WORDS = 13
SHINGLE_WORDS = 3
NUM_PERM = 64
NEAR_THRESHOLD = 0.8
_NORMALISE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)


def normalise(text: str) -> list[str]:
    """The words of `text` as lm-evaluation-harness's Janitor compares them."""
    return text.translate(_NORMALISE).split()


def ngram_hashes(words: Sequence[str], n: int = NGRAM_WORDS) -> set[int]:
    """64-bit digests of the word n-grams (the whole text when it is shorter than n words)."""
    if not words:
        return set()
    grams = [" ".join(words)] if len(words) < n else [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams}


@cache
def lsh_bands(threshold: float = NEAR_THRESHOLD, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for this threshold."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


class Signer:
    """MinHash signatures of many texts at once, as datasketch's MinHash computes them.

    Each row's shingles are hashed in numpy (word crc32s combined over SHINGLE_WORDS positions), then the MinHash's
    own permutations are applied to a whole batch of rows in one array operation and reduced per row: the values
    equal `MinHash(num_perm, seed=1, hashfunc=int).update_batch(shingle_hashes)` row by row (a test holds that), at
    a fraction of its per-row cost.
    """

    def __init__(self, num_perm: int = NUM_PERM) -> None:
        from datasketch import MinHash

        self._minhash = MinHash(num_perm=num_perm, seed=1, hashfunc=int)
        self.num_perm = num_perm

    def shingle_hashes(self, words: Sequence[str]) -> np.ndarray:
        """32-bit hashes of the word SHINGLE_WORDS-grams (one shingle of all words when there are fewer)."""
        hashed = np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint32, count=len(words))
        if len(hashed) < SHINGLE_WORDS:
            hashed = np.concatenate([hashed, np.zeros(SHINGLE_WORDS - len(hashed), dtype=np.uint32)])
        combined = np.zeros(len(hashed) - SHINGLE_WORDS + 1, dtype=np.uint32)
        for offset in range(SHINGLE_WORDS):
            combined = combined * np.uint32(0x01000193) ^ hashed[offset:len(hashed) - SHINGLE_WORDS + 1 + offset]
        return combined

    def signatures(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        """One signature row per row of shingle hashes (uint32, shape (rows, num_perm))."""
        if not shingles:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        flat = np.concatenate(shingles)
        starts = np.cumsum([0] + [len(h) for h in shingles[:-1]])
        a, b = self._minhash.permutations
        permuted = _fmix32(flat)[:, None] * a[None, :] + b[None, :]
        return np.minimum.reduceat(permuted, starts, axis=0)


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine32 scheme applies to every input hash first."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (row, band): rows whose keys agree in some band are near-duplicate candidates."""
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for band in range(bands):
        for column in range(band * rows, (band + 1) * rows):
            keys[:, band] = keys[:, band] * _BAND_MIX + signatures[:, column].astype(np.uint64)
    return keys


def estimated_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """The MinHash estimate of each pair's Jaccard similarity (share of equal signature slots)."""
    out = np.empty(len(left), dtype=np.float32)
    for start in range(0, len(left), chunk):
        stop = start + chunk
        out[start:stop] = (signatures[left[start:stop]] == signatures[right[start:stop]]).mean(axis=1)
    return out


def near_pairs(signatures: np.ndarray, threshold: float = NEAR_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Confirmed near-duplicate pairs (earlier row, later row) among the rows of `signatures`.

    Each bucket pairs every member with the bucket's first and with its predecessor: enough to find an earlier
    near duplicate of every row that has one, in memory linear in the rows (a bucket of m identical rows gives
    2m pairs, not m²).
    """
    if len(signatures) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    bands, rows = lsh_bands(threshold, signatures.shape[1])
    keys = band_keys(signatures, bands, rows)
    found: list[np.ndarray] = []
    for band in range(bands):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        same_as_previous = np.concatenate(([False], sorted_keys[1:] == sorted_keys[:-1]))
        group_start = np.maximum.accumulate(np.where(~same_as_previous, np.arange(len(order)), 0))
        later = np.nonzero(same_as_previous)[0]
        for earlier in (order[group_start[later]], order[later - 1]):
            found.append(np.stack([earlier, order[later]], axis=1))
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), dtype=np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if not len(pairs):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    left, right = pairs.min(axis=1), pairs.max(axis=1)
    keep = estimated_jaccard(signatures, left, right) >= threshold
    return left[keep], right[keep]


@dataclass
class EvalIndex:
    """An evaluation set's rows, ready to be looked for in training text: their 13-grams and MinHash bands."""

    texts: list[str]
    grams: dict[int, list[int]] = field(default_factory=dict)  # 13-gram digest -> eval rows holding it
    signatures: np.ndarray | None = None
    bands: list[dict[int, list[int]]] = field(default_factory=list)  # per band: key -> eval rows

    @classmethod
    def build(cls, texts: Iterable[str]) -> EvalIndex:
        index = cls(list(texts))
        signer = Signer()
        words = [normalise(text) for text in index.texts]
        for row, row_words in enumerate(words):
            for digest in ngram_hashes(row_words):
                index.grams.setdefault(digest, []).append(row)
        index.signatures = signer.signatures([signer.shingle_hashes(w) for w in words])
        bands, rows = lsh_bands()
        keys = band_keys(index.signatures, bands, rows)
        index.bands = [{} for _ in range(bands)]
        for row in range(len(words)):
            for band in range(bands):
                index.bands[band].setdefault(int(keys[row, band]), []).append(row)
        return index


@dataclass
class Overlap:
    """Which eval rows a training text stream overlaps, and one training excerpt for each, by eval row."""

    eval_rows: int
    by_ngram: dict[int, str] = field(default_factory=dict)
    by_near: dict[int, str] = field(default_factory=dict)
    training_rows: int = 0

    @property
    def rows(self) -> int:
        return len(self.by_ngram.keys() | self.by_near.keys())

    @property
    def share(self) -> float:
        return self.rows / self.eval_rows if self.eval_rows else 0.0


def measure_overlap(index: EvalIndex, training_texts: Iterable[str], *, threshold: float = NEAR_THRESHOLD,
                    batch: int = 2048) -> Overlap:
    """Stream training texts past an eval index: each eval row sharing a 13-gram with, or nearly duplicating, a
    training row is contaminated. Memory is the index's and one batch of training rows'."""
    overlap = Overlap(eval_rows=len(index.texts))
    signer = Signer()
    bands, rows = lsh_bands(threshold)
    pending: list[tuple[str, np.ndarray]] = []

    def near(chunk: list[tuple[str, np.ndarray]]) -> None:
        signatures = signer.signatures([shingles for _, shingles in chunk])
        keys = band_keys(signatures, bands, rows)
        for (text, _), signature, row_keys in zip(chunk, signatures, keys, strict=True):
            candidates = {row for band in range(bands) for row in index.bands[band].get(int(row_keys[band]), ())}
            for row in candidates - overlap.by_near.keys():
                if (index.signatures[row] == signature).mean() >= threshold:
                    overlap.by_near[row] = text

    for text in training_texts:
        overlap.training_rows += 1
        words = normalise(text)
        for digest in ngram_hashes(words):
            for row in index.grams.get(digest, ()):
                overlap.by_ngram.setdefault(row, text)
        pending.append((text, signer.shingle_hashes(words)))
        if len(pending) >= batch:
            near(pending)
            pending = []
    if pending:
        near(pending)
    return overlap

"""The data report of a dataset: what its rows hold, beyond whether they parse.

Rows per split and file, columns and their types, empty / malformed / overlong rows (in each base model's tokens),
exact and near duplicates within and across splits, rows of a held-out split found in train (leakage), label
balance of multiple-choice rows, length histograms, and strings that look like secrets or personal data.

Rows are read by `workers.engine.datasets` (the one home of row shapes) in one streaming pass that keeps a few
numbers per row (a digest, lengths, a 64-slot MinHash signature: about 300 bytes), then a second pass reads only
the rows the report quotes. Every quoted text is masked: a secret is replaced by its kind in every excerpt, and
the secrets section keeps only a masked form (its first characters), so the stored report never holds one whole.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.contamination import (
    NEAR_THRESHOLD,
    EvalIndex,
    Signer,
    measure_overlap,
    near_pairs,
    normalise,
)
from workers.engine.datasets import EVAL_SPLITS, canonical_fields, choice_answer, read_records, row_format, row_texts

REPORT_VERSION = "1"
EXAMPLES = 5
EXCERPT_CHARS = 160
TOKEN_BATCH = 2048
SIGNATURE_BATCH = 2048
# Character lengths: bins that double, so short and long rows both read well.
LENGTH_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
# Well-known credential formats (those gitleaks and detect-secrets look for) and personal data.
SECRET_PATTERNS = {
    "api_key": re.compile(r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
                          r"|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
                          r"|hf_[A-Za-z0-9]{30,})"),
    "private_key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}(?![\w-])"),
}
SECRET_LABELS = {"api_key": "API key", "private_key": "private key", "email": "e-mail address", "phone": "phone number"}
# A cheap first look (literal key prefixes, '@', three digits in a row) so most rows skip the full patterns.
_MAYBE_SECRET = re.compile(r"sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox|AIza|hf_|PRIVATE KEY|@|\d{3}")
_ANY_SECRET = re.compile("|".join(f"(?P<{kind}>{p.pattern})" for kind, p in SECRET_PATTERNS.items()))


@dataclass(frozen=True)
class TokenBudget:
    """A base model's tokenizer and context length: rows longer than `max_tokens` are overlong for it."""

    name: str
    count_tokens: Callable[[list[str]], list[int]]
    max_tokens: int


def tokenizer_budget(name: str, tokenizer_file: Path, max_tokens: int) -> TokenBudget:
    """A budget from a tokenizer.json (Hugging Face `tokenizers`, batch-encoded in Rust on every core)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))

    def count(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return TokenBudget(name, count, max_tokens)


def mask(text: str, *, reveal: bool = False) -> str:
    """`text` with every secret-looking string replaced by its kind, or (`reveal`) by a masked form of it."""
    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or "api_key"
        return _masked(kind, match.group()) if reveal else f"[{SECRET_LABELS[kind]}]"

    return _ANY_SECRET.sub(replace, text)


def _masked(kind: str, value: str) -> str:
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}…@{domain}"
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return f"…{digits[-2:]} ({len(digits)} digits)"
    return f"{value[:4]}… ({len(value)} characters)"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = mask(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Rows:
    """A few numbers per row, in growing lists turned into arrays once the pass ends."""

    file: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    split: list[int] = field(default_factory=list)
    digest: list[int] = field(default_factory=list)
    prompt_chars: list[int] = field(default_factory=list)
    response_chars: list[int] = field(default_factory=list)
    signatures: list[np.ndarray] = field(default_factory=list)  # batches of SIGNATURE_BATCH rows
    shingles: list[np.ndarray] = field(default_factory=list)  # the current batch's shingle hashes


@dataclass
class _Scan:
    files: list[str]
    split_names: list[str]
    split_of_file: list[int]
    budgets: Sequence[TokenBudget]
    rows: _Rows = field(default_factory=_Rows)
    columns: list[Counter] = field(default_factory=list)
    file_rows: list[int] = field(default_factory=list)
    formats: list[Counter] = field(default_factory=list)
    malformed: list[dict[str, Any]] = field(default_factory=list)
    malformed_count: int = 0
    empty: list[int] = field(default_factory=list)  # row indices
    empty_count: int = 0
    labels: dict[str, Counter] = field(default_factory=dict)
    choice_counts: Counter = field(default_factory=Counter)
    secrets: Counter = field(default_factory=Counter)
    secret_rows: int = 0
    secret_examples: list[dict[str, Any]] = field(default_factory=list)
    overlong: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_texts: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.columns = [Counter() for _ in self.files]
        self.formats = [Counter() for _ in self.files]
        self.file_rows = [0 for _ in self.files]
        self.overlong = {b.name: {"max_tokens": b.max_tokens, "rows": 0, "longest": 0, "examples": []}
                         for b in self.budgets}


def data_report(folder: Path, splits: Mapping[str, Sequence[str]], *, budgets: Sequence[TokenBudget] = (),
                threshold: float = NEAR_THRESHOLD) -> dict[str, Any]:
    """The report of the data files of `folder`, by split (as validation resolved them: split -> files)."""
    started = time.monotonic()
    split_names = list(splits)
    files = [name for split in split_names for name in splits[split]]
    scan = _Scan(files, split_names, [split_names.index(s) for s in split_names for _ in splits[s]], budgets)
    signer = Signer()
    for file_index, name in enumerate(files):
        for record in read_records(folder / name):
            _scan_record(scan, signer, file_index, record.line, record.value, record.error)
    _count_tokens(scan)
    rows = scan.rows
    rows.signatures.append(signer.signatures(rows.shingles))
    arrays = {
        "file": np.array(rows.file, dtype=np.int32), "line": np.array(rows.line, dtype=np.int64),
        "split": np.array(rows.split, dtype=np.int16), "digest": np.array(rows.digest, dtype=np.uint64),
        "prompt": np.array(rows.prompt_chars, dtype=np.int64), "response": np.array(rows.response_chars, dtype=np.int64),
    }
    signatures = np.concatenate(rows.signatures)
    rows.signatures.clear()
    exact_left, exact_right = _exact_pairs(arrays["digest"])
    near_left, near_right = near_pairs(signatures, threshold)
    not_exact = arrays["digest"][near_left] != arrays["digest"][near_right]
    near_left, near_right = near_left[not_exact], near_right[not_exact]
    del signatures

    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "rows": len(arrays["file"]),
        "splits": {s: {"files": list(splits[s]), "rows": int((arrays["split"] == i).sum())}
                   for i, s in enumerate(split_names)},
        "files": {name: {"split": split_names[scan.split_of_file[i]], "rows": scan.file_rows[i],
                         "formats": dict(scan.formats[i]), "columns": _columns(scan.columns[i])}
                  for i, name in enumerate(files)},
        "malformed": {"rows": scan.malformed_count, "examples": scan.malformed},
        "empty": {"rows": scan.empty_count, "examples": [_ref(arrays, split_names, files, i) for i in scan.empty]},
        "overlong": scan.overlong,
        "duplicates": {
            "exact": _duplicates(arrays, split_names, files, exact_left, exact_right),
            "near": {**_duplicates(arrays, split_names, files, near_left, near_right), "threshold": threshold},
        },
        "leakage": _leakage(arrays, split_names, files, (exact_left, exact_right), (near_left, near_right)),
        "labels": {"by_split": {s: _label_counts(c) for s, c in scan.labels.items()},
                   "choices": {str(k): v for k, v in sorted(scan.choice_counts.items())}},
        "lengths": {"edges": list(LENGTH_EDGES), "unit": "characters",
                    "prompt": _histogram(arrays["prompt"]), "response": _histogram(arrays["response"])},
        "sensitive": {"rows": scan.secret_rows, "kinds": dict(scan.secrets), "examples": scan.secret_examples},
    }
    _fill_excerpts(report, folder, files)
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def _scan_record(scan: _Scan, signer: Signer, file_index: int, line: int, value: object, error: str) -> None:
    name = scan.files[file_index]
    row_format_name, problem = (None, error) if error else row_format(value)
    if row_format_name is None:
        scan.malformed_count += 1
        if len(scan.malformed) < EXAMPLES:
            scan.malformed.append({"file": name, "line": line, "message": mask(problem)})
        return
    assert isinstance(value, dict)
    index = len(scan.rows.file)
    scan.file_rows[file_index] += 1
    scan.formats[file_index][row_format_name] += 1
    for column, cell in value.items():
        scan.columns[file_index][(column, _json_type(cell))] += 1
    prompt, response = row_texts(value, row_format_name)
    rows = scan.rows
    rows.file.append(file_index)
    rows.line.append(line)
    rows.split.append(scan.split_of_file[file_index])
    canonical = json.dumps(canonical_fields(value, row_format_name), sort_keys=True, ensure_ascii=False)
    rows.digest.append(int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "little"))
    rows.prompt_chars.append(len(prompt))
    rows.response_chars.append(len(response))
    rows.shingles.append(signer.shingle_hashes(normalise(f"{prompt}\n{response}")))
    if len(rows.shingles) >= SIGNATURE_BATCH:
        rows.signatures.append(signer.signatures(rows.shingles))
        rows.shingles.clear()
    if not prompt.strip() or (row_format_name != "text" and not response.strip()):
        scan.empty_count += 1
        if len(scan.empty) < EXAMPLES:
            scan.empty.append(index)
    if row_format_name == "multiple_choice":
        split = scan.split_names[scan.split_of_file[file_index]]
        scan.labels.setdefault(split, Counter())[choice_answer(value)] += 1
        scan.choice_counts[len(value["choices"])] += 1
    _scan_secrets(scan, name, line, f"{prompt}\n{response}")
    if scan.budgets:
        scan.pending_texts.append((index, f"{prompt}\n{response}" if response else prompt))
        if len(scan.pending_texts) >= TOKEN_BATCH:
            _count_tokens(scan)


def _scan_secrets(scan: _Scan, name: str, line: int, text: str) -> None:
    found = [(m.lastgroup, m.group()) for m in _ANY_SECRET.finditer(text)] if _MAYBE_SECRET.search(text) else []
    if not found:
        return
    scan.secret_rows += 1
    scan.secrets.update(kind for kind, _ in found)
    if len(scan.secret_examples) < EXAMPLES:
        scan.secret_examples.append({"file": name, "line": line, "kinds": sorted({k for k, _ in found}),
                                     "masked": [_masked(kind, value) for kind, value in found[:3]]})


def _count_tokens(scan: _Scan) -> None:
    if not scan.pending_texts:
        return
    indices, texts = zip(*scan.pending_texts, strict=True)
    scan.pending_texts.clear()
    for budget in scan.budgets:
        entry = scan.overlong[budget.name]
        for index, tokens in zip(indices, budget.count_tokens(list(texts)), strict=True):
            entry["longest"] = max(entry["longest"], tokens)
            if tokens > budget.max_tokens:
                entry["rows"] += 1
                if len(entry["examples"]) < EXAMPLES:
                    entry["examples"].append({"row": index, "tokens": tokens})


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _columns(counts: Counter) -> dict[str, dict[str, int]]:
    columns: dict[str, dict[str, int]] = {}
    for (column, kind), count in sorted(counts.items()):
        columns.setdefault(column, {})[kind] = count
    return columns


def _exact_pairs(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row, later copy) for every row whose canonical fields equal an earlier row's."""
    order = np.argsort(digests, kind="stable")
    ordered = digests[order]
    same = np.concatenate(([False], ordered[1:] == ordered[:-1]))
    group_start = np.maximum.accumulate(np.where(~same, np.arange(len(order)), 0))
    later = np.nonzero(same)[0]
    return order[group_start[later]], order[later]


def _ref(arrays: Mapping[str, np.ndarray], split_names: list[str], files: list[str], index: int) -> dict[str, Any]:
    """Where a row is; its `text` is filled by the second pass."""
    return {"row": int(index), "file": files[arrays["file"][index]], "line": int(arrays["line"][index]),
            "split": split_names[arrays["split"][index]]}


def _duplicates(arrays: Mapping[str, np.ndarray], split_names: list[str], files: list[str], left: np.ndarray,
                right: np.ndarray) -> dict[str, Any]:
    """Rows that repeat an earlier row, within their split and across splits, with pairs side by side."""
    total = len(arrays["file"])
    first = {}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        first.setdefault(b, a)  # the earliest partner of each later row
    later = np.array(sorted(first), dtype=np.int64)
    earlier = np.array([first[b] for b in later.tolist()], dtype=np.int64)
    across = arrays["split"][later] != arrays["split"][earlier] if len(later) else np.zeros(0, dtype=bool)
    affected = len(set(later.tolist()) | set(earlier.tolist()))
    return {
        "rows": len(later), "share": len(later) / total if total else 0.0, "affected_rows": affected,
        "within_split": int((~across).sum()), "across_splits": int(across.sum()),
        "examples": [{"first": _ref(arrays, split_names, files, a), "copy": _ref(arrays, split_names, files, b)}
                     for a, b in list(zip(earlier.tolist(), later.tolist(), strict=True))[:EXAMPLES]],
    }


def _leakage(arrays: Mapping[str, np.ndarray], split_names: list[str], files: list[str],
             exact: tuple[np.ndarray, np.ndarray], near: tuple[np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
    """For each held-out split beside a train split: its rows that appear in train, exactly or nearly."""
    if "train" not in split_names:
        return []
    train = split_names.index("train")
    results = []
    for held_out in (s for s in split_names if s in EVAL_SPLITS):
        test = split_names.index(held_out)
        found: dict[str, dict[int, int]] = {"exact": {}, "near": {}}
        for how, (left, right) in (("exact", exact), ("near", near)):
            split_left, split_right = arrays["split"][left], arrays["split"][right]
            crossing = ((split_left == train) & (split_right == test)) | ((split_left == test) & (split_right == train))
            for a, b, a_is_test in zip(left[crossing].tolist(), right[crossing].tolist(),
                                       (split_left[crossing] == test).tolist(), strict=True):
                test_row, train_row = (a, b) if a_is_test else (b, a)
                found[how].setdefault(test_row, train_row)
        leaked = found["exact"].keys() | found["near"].keys()
        size = int((arrays["split"] == test).sum())
        examples = [{"held_out": _ref(arrays, split_names, files, t),
                     "train": _ref(arrays, split_names, files, found["exact"].get(t, found["near"].get(t))),
                     "how": "exact" if t in found["exact"] else "near"} for t in sorted(leaked)[:EXAMPLES]]
        results.append({"split": held_out, "train": "train", "rows": len(leaked), "of": size,
                        "share": len(leaked) / size if size else 0.0, "exact": len(found["exact"]),
                        "near": len(leaked - found["exact"].keys()), "examples": examples})
    return results


def _label_counts(counts: Counter) -> dict[str, Any]:
    total = sum(counts.values())
    largest = max(counts.values(), default=0)
    return {"rows": total, "counts": {str(k): v for k, v in sorted(counts.items())},
            "largest_share": largest / total if total else 0.0}


def _histogram(lengths: np.ndarray) -> list[int]:
    """Rows per bin of LENGTH_EDGES; the last bin holds everything from its edge up."""
    edges = np.array([*LENGTH_EDGES, np.iinfo(np.int64).max])
    return np.histogram(lengths, bins=edges)[0].astype(int).tolist()


def _quoted(report: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every row reference the report quotes."""
    yield from report["empty"]["examples"]
    for kind in ("exact", "near"):
        for pair in report["duplicates"][kind]["examples"]:
            yield from (pair["first"], pair["copy"])
    for entry in report["leakage"]:
        for pair in entry["examples"]:
            yield from (pair["held_out"], pair["train"])


def _fill_excerpts(report: dict[str, Any], folder: Path, files: list[str]) -> None:
    """The second pass: read only the files that hold quoted rows and set each reference's masked `text`."""
    refs = list(_quoted(report))
    overlong_refs = [e for entry in report["overlong"].values() for e in entry["examples"]]
    wanted_rows = {ref["row"] for ref in refs} | {e["row"] for e in overlong_refs}
    if not wanted_rows:
        return
    texts: dict[int, tuple[str, str, int]] = {}
    index = 0
    for name in files:
        for record in read_records(folder / name):
            fmt = None if record.error else row_format(record.value)[0]
            if fmt is None:
                continue
            if index in wanted_rows:
                prompt, response = row_texts(record.value, fmt)
                texts[index] = (name, excerpt(f"{prompt} → {response}" if response else prompt), record.line)
            index += 1
    for ref in refs:
        ref["text"] = texts.get(ref["row"], ("", "", 0))[1]
    for entry in overlong_refs:
        name, text, line = texts.get(entry["row"], ("", "", 0))
        entry.update(file=name, line=line, text=text)


def file_texts(folder: Path, names: Sequence[str]) -> Iterator[str]:
    """The text of every well-formed row of these data files (prompt, then response), as overlap compares it."""
    for name in names:
        for record in read_records(folder / name):
            fmt = None if record.error else row_format(record.value)[0]
            if fmt is not None:
                prompt, response = row_texts(record.value, fmt)
                yield f"{prompt}\n{response}" if response else prompt


def contamination_figures(eval_folder: Path, eval_files: Sequence[str], train_folder: Path,
                          train_files: Sequence[str]) -> dict[str, Any]:
    """How much of an eval set a training dataset holds: eval rows sharing a 13-gram with it or nearly duplicating
    one of its rows, with masked examples side by side."""
    index = EvalIndex.build(file_texts(eval_folder, eval_files))
    overlap = measure_overlap(index, file_texts(train_folder, train_files))
    found = sorted(overlap.by_ngram.keys() | overlap.by_near.keys())
    return {
        "eval_rows": overlap.eval_rows, "training_rows": overlap.training_rows, "rows": overlap.rows,
        "ngram_rows": len(overlap.by_ngram), "near_rows": len(overlap.by_near.keys() - overlap.by_ngram.keys()),
        "overlap": overlap.share,
        "examples": [{"eval": excerpt(index.texts[row]),
                      "train": excerpt(overlap.by_ngram.get(row) or overlap.by_near[row]),
                      "how": "13-gram" if row in overlap.by_ngram else "near duplicate"} for row in found[:EXAMPLES]],
    }

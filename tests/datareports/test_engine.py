"""The data report and contamination measures of the engine, on tiny files (no Django)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datasketch import MinHash

from workers.engine.contamination import Signer, near_pairs, normalise
from workers.engine.datareport import contamination_figures, data_report, mask, tokenizer_budget

KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv"
QUESTIONS = [f"How many legs does animal number {i} have when it stands on the grass field" for i in range(30)]


def write(folder: Path, name: str, rows: list[dict]) -> None:
    (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_signatures_equal_datasketch_minhash_row_by_row() -> None:
    signer = Signer()
    texts = ["the quick brown fox jumps over the lazy dog", "two words", ""]
    hashes = [signer.shingle_hashes(normalise(text)) for text in texts]
    for row_hashes, signature in zip(hashes, signer.signatures(hashes), strict=True):
        reference = MinHash(num_perm=64, seed=1, hashfunc=int)
        reference.update_batch(row_hashes.tolist())
        assert np.array_equal(reference.hashvalues, signature)


def test_near_pairs_find_a_changed_word_and_not_strangers() -> None:
    signer = Signer()
    texts = [*QUESTIONS[:5], QUESTIONS[2] + " today"]  # one shingle more: Jaccard 13/14
    left, right = near_pairs(signer.signatures([signer.shingle_hashes(normalise(t)) for t in texts]))
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(2, 5)]


def test_report_finds_duplicates_leakage_secrets_labels_and_overlong_rows(tmp_path: Path, tiny_base: Path) -> None:
    train = [{"prompt": q, "response": f"{i % 4} legs"} for i, q in enumerate(QUESTIONS[:20])]
    train += [train[3], {"prompt": QUESTIONS[5], "response": "1 legs indeed"},
              {"prompt": f"my key is {KEY}, mail ann@example.org", "response": "ok"},
              {"prompt": "word " * 400, "response": "long"}]
    write(tmp_path, "train.jsonl", train)
    write(tmp_path, "test.jsonl", [train[7], {"prompt": QUESTIONS[25], "response": "2 legs"}])
    write(tmp_path, "eval.jsonl", [{"question": f"pick {i}", "choices": ["a", "b", "c"], "answer": i % 2}
                                   for i in range(6)])
    budget = tokenizer_budget("nomoat/tiny-llama", tiny_base / "tokenizer.json", 256)
    report = data_report(tmp_path, {"train": ["train.jsonl"], "test": ["test.jsonl"], "eval": ["eval.jsonl"]},
                         budgets=[budget])

    assert report["rows"] == 32 and report["splits"]["train"]["rows"] == 24
    assert report["files"]["eval.jsonl"]["columns"] == {"answer": {"integer": 6}, "choices": {"list": 6},
                                                        "question": {"string": 6}}
    exact = report["duplicates"]["exact"]
    assert (exact["rows"], exact["within_split"], exact["across_splits"]) == (2, 1, 1)
    assert exact["examples"][0]["first"]["line"] == 4 and exact["examples"][0]["copy"]["line"] == 21
    assert exact["examples"][0]["copy"]["text"].startswith(QUESTIONS[3])
    near = report["duplicates"]["near"]
    assert near["rows"] == 1 and near["examples"][0]["first"]["line"] == 6
    leak = {entry["split"]: entry for entry in report["leakage"]}
    assert (leak["test"]["rows"], leak["test"]["of"], leak["test"]["exact"]) == (1, 2, 1)
    assert leak["test"]["examples"][0]["train"]["line"] == 8 and leak["eval"]["rows"] == 0
    assert report["labels"]["by_split"]["eval"]["counts"] == {"0": 3, "1": 3}
    assert report["sensitive"]["kinds"] == {"api_key": 1, "email": 1}
    assert report["sensitive"]["examples"][0]["line"] == 23
    overlong = report["overlong"]["nomoat/tiny-llama"]
    assert overlong["rows"] == 1 and overlong["examples"][0]["line"] == 24 and overlong["longest"] > 256
    assert sum(report["lengths"]["prompt"]) == 32
    # No secret is stored whole anywhere in the report.
    stored = json.dumps(report)
    assert KEY not in stored and "ann@example.org" not in stored and KEY[:4] in stored


def test_mask_hides_secrets_in_any_text() -> None:
    text = f"use {KEY} or AKIAABCDEFGHIJKLMNOP, write to bob.smith@mail.example.com or +44 20 7946 0958"
    assert mask(text) == "use [API key] or [API key], write to [e-mail address] or [phone number]"
    assert KEY not in mask(text, reveal=True) and "b…@mail.example.com" in mask(text, reveal=True)


def test_contamination_counts_eval_rows_held_by_training_data(tmp_path: Path) -> None:
    long_question = ("Which river flows through the old town of the capital city and where does it meet "
                     "the sea after passing the mountains")
    write(tmp_path, "eval.jsonl", [{"prompt": long_question, "response": "the Seine"},
                                   {"prompt": "What colour is the sky on a clear summer day", "response": "blue"},
                                   {"prompt": "Something nobody trained on at all", "response": "x"}])
    write(tmp_path, "train.jsonl", [{"prompt": f"Intro text. {long_question} and more words here", "response": "?"},
                                    {"prompt": "What colour is the sky on a clear summer day", "response": "blue indeed"},
                                    {"prompt": QUESTIONS[9], "response": "9"}])
    figures = contamination_figures(tmp_path, ["eval.jsonl"], tmp_path, ["train.jsonl"])
    assert (figures["eval_rows"], figures["training_rows"], figures["rows"]) == (3, 3, 2)
    assert (figures["ngram_rows"], figures["near_rows"]) == (1, 1)
    assert figures["overlap"] == 2 / 3 and {e["how"] for e in figures["examples"]} == {"13-gram", "near duplicate"}

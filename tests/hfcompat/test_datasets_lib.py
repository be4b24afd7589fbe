"""`datasets.load_dataset("owner/name")` against nomoat: a hosted dataset's files and splits, JSONL and CSV."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CARD = b"---\nlicense: cc0-1.0\n---\n# SQL pairs\n"
LOAD = """
    import os
    os.environ["HF_DATASETS_OFFLINE"] = "0"  # the cache and HF_HOME are the test's own; the hub is on loopback
    import datasets

    loaded = datasets.load_dataset(repo, revision=revision)
    result = {split: loaded[split].to_list() for split in sorted(loaded)}
"""


def test_load_dataset_reads_jsonl_splits(hub_client, make_user, make_version):
    alice = make_user("alice")
    train = b"".join(b'{"prompt": "q%d", "response": "SELECT %d"}\n' % (i, i) for i in range(5))
    make_version(alice, "sql-pairs", kind="dataset", files={"README.md": CARD, "train.jsonl": train,
                                                            "test.jsonl": b'{"prompt": "t", "response": "SELECT 9"}\n'})
    make_version(alice, "sql-pairs", kind="dataset", files={"README.md": CARD, "train.jsonl": train[:40]})
    got = hub_client(LOAD, repo="alice/sql-pairs", revision="v1")
    assert got == {"test": [{"prompt": "t", "response": "SELECT 9"}],
                   "train": [{"prompt": f"q{i}", "response": f"SELECT {i}"} for i in range(5)]}
    latest = hub_client(LOAD, repo="alice/sql-pairs", revision=None)
    assert list(latest) == ["train"] and len(latest["train"]) == 1  # main is v2, which has one split


def test_load_dataset_reads_csv(hub_client, make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "sql-csv", kind="dataset",
                 files={"README.md": CARD, "train.csv": b"prompt,response\nall users,SELECT * FROM users\n"})
    got = hub_client(LOAD, repo="alice/sql-csv", revision=None)
    assert got == {"train": [{"prompt": "all users", "response": "SELECT * FROM users"}]}

"""`datasets.load_dataset("owner/name")` against nomoat: a hosted dataset's files and splits, JSONL, CSV and Parquet."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub.accounts.services import api_token_create

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


def test_load_dataset_reads_parquet_splits(hub_client, make_user, make_version):
    alice = make_user("alice")
    chat = [{"role": "user", "content": "all users"}, {"role": "assistant", "content": "SELECT * FROM users"}]

    def parquet(rows: list) -> bytes:  # a config's splits share one schema, as `datasets` requires
        out = io.BytesIO()
        pq.write_table(pa.table({"messages": rows}), out, row_group_size=2)
        return out.getvalue()

    make_version(alice, "sql-parquet", kind="dataset", files={
        "README.md": CARD, "train.parquet": parquet([chat, chat[:1] + [{**chat[1], "content": "SELECT 1"}], chat]),
        "test.parquet": parquet([chat]),
    })
    got = hub_client(LOAD, repo="alice/sql-parquet", revision=None)
    assert got["test"] == [{"messages": chat}]
    assert [row["messages"][1]["content"] for row in got["train"]] == ["SELECT * FROM users", "SELECT 1",
                                                                       "SELECT * FROM users"]


def test_a_pushed_parquet_dataset_is_validated_then_loads(hub_client, celery_worker, make_user):
    """Pushed with huggingface_hub, checked by a real worker: a bad row is refused with its row group, row and column;
    a good file becomes a version the owner loads with `datasets`."""
    alice = make_user("alice")
    got = hub_client("""
        import io, os
        os.environ["HF_DATASETS_OFFLINE"] = "0"
        import datasets
        import pyarrow as pa
        import pyarrow.parquet as pq

        def parquet(responses):
            out = io.BytesIO()
            pq.write_table(pa.table({"prompt": ["all users", "one user"], "response": responses}), out)
            return out.getvalue()

        api.create_repo("alice/sql-pq", repo_type="dataset", token=token)
        try:
            api.upload_file(path_or_fileobj=parquet(["SELECT *", ""]), path_in_repo="train.parquet",
                            repo_id="alice/sql-pq", repo_type="dataset", token=token)
            refused = None
        except HfHubHTTPError as exc:
            refused = [exc.response.status_code, str(exc)]
        api.upload_file(path_or_fileobj=parquet(["SELECT *", "SELECT 1"]), path_in_repo="train.parquet",
                        repo_id="alice/sql-pq", repo_type="dataset", token=token)
        loaded = datasets.load_dataset("alice/sql-pq", token=token)
        result = {"refused": refused, "train": loaded["train"].to_list()}
    """, token=api_token_create(user=alice, name="hf", scope="write").raw)
    status, message = got["refused"]
    assert status == 422 and 'train.parquet row group 0, row 2: `response` must be a non-empty string, got ""' in message
    assert got["train"] == [{"prompt": "all users", "response": "SELECT *"}, {"prompt": "one user", "response": "SELECT 1"}]

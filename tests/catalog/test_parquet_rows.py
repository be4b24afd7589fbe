"""The dataset row viewer on Parquet files: real rows through the engine's parser, the schema's column types, paging,
and a file that is not Parquet answered with the problem, never a 500; eval suites read Parquet rows the same way."""

from __future__ import annotations

import html
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub.catalog.services import blob_put_stream
from hub.evals.suites import dataset_rows

pytestmark = pytest.mark.django_db

CARD = b"---\nlicense: mit\n---\n"


def parquet(table: pa.Table, **kwargs) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **kwargs)
    return out.getvalue()


def test_row_viewer_shows_parquet_rows_with_their_declared_types(client, make_user, make_version):
    alice = make_user("alice")
    chats = [[{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
             for i in range(25)]
    table = pa.table({"messages": chats, "score": pa.array([i / 2 for i in range(25)], pa.float32())})
    make_version(alice, "chats", kind="dataset", files={"README.md": CARD, "train.parquet": parquet(
        table, row_group_size=10)})
    page = html.unescape(client.get("/datasets/alice/chats").content.decode())
    assert "list<struct<role: string, content: string>>" in page and "float" in page  # the file's own types
    assert "question 0" in page and "answer 19" in page and "question 20" not in page
    assert "next rows" in page
    second = html.unescape(client.get("/datasets/alice/chats", {"rows": 2}).content.decode())
    assert "question 24" in second and "question 19" not in second and "next rows" not in second


def test_row_viewer_names_a_file_that_is_not_parquet(client, make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "broken", kind="dataset", files={"README.md": CARD, "train.parquet": b"PAR1 and then nothing"})
    response = client.get("/datasets/alice/broken")
    assert response.status_code == 200
    assert "not a Parquet file (" in html.unescape(response.content.decode())


def test_eval_suites_stream_parquet_rows_from_the_blob_store():
    data = parquet(pa.table({"question": [f"{i} + 1?" for i in range(5)], "choices": [["1", "2"]] * 5,
                             "answer": [1] * 5}), row_group_size=2)
    blob = blob_put_stream(stream=io.BytesIO(data))
    rows = dataset_rows([("eval.parquet", blob.sha256)], max_items=3)  # a stream that cannot seek, spooled
    assert rows == [{"question": f"{i} + 1?", "choices": ["1", "2"], "answer": 1} for i in range(3)]

"""Server-rendered pages: browse, detail, sanitized cards."""

from __future__ import annotations

import html

import pytest

from hub.catalog.models import VersionState

pytestmark = pytest.mark.django_db


def test_home_browse_and_detail_pages(client, make_user, make_version, tiny_base_model):
    alice = make_user("alice")
    make_version(alice, "sql-helper", body="Turns questions into **SQL**.", base_model=tiny_base_model,
                 summary="text to SQL")
    make_version(alice, "hidden", state=VersionState.PENDING_REVIEW)
    home = client.get("/").content.decode()
    assert "nomoat/tiny-llama" in home and "alice/sql-helper" in home and "alice/hidden" not in home
    browse = client.get("/adapters/", {"search": "SQL"}).content.decode()
    assert "alice/sql-helper" in browse and "1 adapter matching" in browse
    detail = client.get("/adapters/alice/sql-helper").content.decode()
    assert "<strong>SQL</strong>" in detail and "adapter_model.safetensors" in detail
    assert client.get("/adapters/alice/hidden").status_code == 404
    assert client.get("/models/nomoat/tiny-llama").status_code == 200


def test_card_markdown_is_sanitized(client, make_user, make_version):
    alice = make_user("alice")
    evil = ("---\nlicense: mit\n---\n# Hi\n<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n"
            "[click](javascript:alert(3))\n<iframe src='https://evil'></iframe>\n")
    make_version(alice, "evil", files={"README.md": evil.encode(), "adapter_model.safetensors": b"w"})
    html = client.get("/adapters/alice/evil").content.decode()
    assert "<script>alert(1)" not in html and "onerror" not in html and "javascript:" not in html
    assert "<iframe" not in html and "<h1>Hi</h1>" in html


def test_file_download_from_the_page(client, make_user, make_version):
    alice = make_user("alice")
    make_version(alice, "dl", files={"README.md": b"# x", "adapter_model.safetensors": b"abc" * 10})
    response = client.get("/adapters/alice/dl/v/1/files/adapter_model.safetensors")
    assert b"".join(response.streaming_content) == b"abc" * 10


def test_row_viewer_masks_secrets_for_all_but_the_uploader_and_moderators(client, make_user, make_version):
    alice, bob, mod = make_user("alice"), make_user("bob"), make_user("mod", role="moderator")
    key = "sk-" + "a1B2c3D4e5" * 4
    rows = b'{"prompt": "my key is %s", "response": "ok"}\n{"prompt": "write to ann@example.com", "response": "ok"}\n'
    make_version(alice, "leaky", kind="dataset", files={"README.md": b"---\nlicense: mit\n---\n",
                                                         "train.jsonl": rows % key.encode()})
    seen = {}
    for who in (None, bob, alice, mod):
        client.logout()
        if who is not None:
            client.force_login(who)
        seen[who.username if who else "anonymous"] = client.get("/datasets/alice/leaky").content.decode()
    for viewer in ("anonymous", "bob"):
        assert key not in seen[viewer] and "ann@example.com" not in seen[viewer]
        assert "[API key]" in seen[viewer] and "[e-mail address]" in seen[viewer]
    for viewer in ("alice", "mod"):
        assert key in seen[viewer] and "ann@example.com" in seen[viewer]


def test_published_files_offer_their_torrent_and_metalink_on_the_page(client, make_user, make_version):
    alice = make_user("alice")
    version = make_version(alice, "swarmed")
    weights = version.files.get(path="adapter_model.safetensors")
    page = client.get("/adapters/alice/swarmed").content.decode()
    torrent, metalink = f"/api/v1/blobs/{weights.blob_id}/torrent", f"/api/v1/blobs/{weights.blob_id}/meta4"
    assert f'href="{torrent}"' in page and f'href="{metalink}"' in page
    assert client.get(torrent)["Content-Type"] == "application/x-bittorrent"
    assert b"<metalink" in client.get(metalink).content
    # Once the torrent is made, the page shows the magnet the API lists for the same file.
    api_magnet = next(f["magnet"] for f in client.get("/api/v1/adapters/alice/swarmed/versions/1").json()["files"]
                      if f["path"] == "adapter_model.safetensors")
    assert api_magnet.startswith("magnet:?xt=urn:btih:") and "xt=urn:btmh:1220" in api_magnet
    assert f'href="{html.escape(api_magnet)}"' in client.get("/adapters/alice/swarmed").content.decode()
    make_version(alice, "draft", state=VersionState.PENDING_REVIEW)
    client.force_login(alice)  # the owner sees a draft's page, but a draft is not served to swarms
    assert "/torrent" not in client.get("/adapters/alice/draft").content.decode()

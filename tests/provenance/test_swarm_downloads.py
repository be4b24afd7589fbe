"""Real clients download a hub file another way than its plain URL: libtorrent through the hybrid torrent from web
seeds only (no peers, no DHT, no local discovery, loopback only), aria2 through the Metalink."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import requests

from hub.provenance.signing import version_sign
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
DATA = "train.jsonl"


@pytest.fixture
def served(make_user, make_version, live_server):
    """A published, signed dataset with a file of several pieces; (its sha256, its bytes, the hub's URL)."""
    rows = b"".join(b'{"prompt": "row %d", "response": "%s"}\n' % (i, hashlib.sha256(b"%d" % i).hexdigest().encode())
                    for i in range(5000))
    version = make_version(make_user("alice"), "rows", kind="dataset", files={DATA: rows})
    version_sign(version=version)
    return hashlib.sha256(rows).hexdigest(), rows, live_server.url.replace("localhost", "127.0.0.1")


def test_libtorrent_downloads_through_the_torrent_from_web_seeds_only(served, tmp_path: Path):
    import libtorrent as lt

    sha, data, hub = served
    assert len(data) > 4 * 64 * 1024
    torrent = requests.get(f"{hub}/api/v1/blobs/{sha}/torrent", timeout=30)
    assert torrent.status_code == 200
    session = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                          "enable_upnp": False, "enable_natpmp": False, "alert_mask": lt.alert_category.error})
    info = lt.torrent_info(lt.bdecode(torrent.content))
    assert info.num_pieces() > 1 and info.info_hashes().has_v2()
    handle = session.add_torrent({"ti": info, "save_path": str(tmp_path)})
    wait_until(lambda: handle.status().is_seeding, timeout=120, what="libtorrent to finish from the web seed")
    assert hashlib.sha256((tmp_path / DATA).read_bytes()).hexdigest() == sha
    assert handle.status().num_peers <= 1  # the web seed only
    session.remove_torrent(handle)


def test_aria2_downloads_through_the_metalink(served, tmp_path: Path):
    sha, data, hub = served
    metalink = tmp_path / "weights.meta4"
    metalink.write_bytes(requests.get(f"{hub}/api/v1/blobs/{sha}/meta4", timeout=30).content)
    out = tmp_path / "out"
    result = subprocess.run(
        ["aria2c", "--no-conf", "--quiet=false", "--console-log-level=warn", "--enable-dht=false",
         "--bt-enable-lpd=false", "--check-integrity=true", "--max-connection-per-server=2", "--dir", str(out),
         f"--metalink-file={metalink}"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hashlib.sha256((out / DATA).read_bytes()).hexdigest() == sha

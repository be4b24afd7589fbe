"""The seeder seeds the most downloaded blobs to real BitTorrent peers (libtorrent, loopback, no DHT, no web seed);
`sign_unsigned` signs what was published before signing existed; `signing_key` rotates and revokes."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from django.core.management import call_command

from hub.catalog.models import Version
from hub.provenance.models import BlobSwarm
from hub.provenance.seeding import Seeder, most_requested
from hub.provenance.swarm import swarm_for
from tests.conftest import wait_until
from workers.engine.signing import ATTESTATIONS_FILE, SIGNATURE_FILE

pytestmark = pytest.mark.django_db


def test_the_seeder_serves_the_most_downloaded_blob_to_a_peer(make_user, make_version, tmp_path):
    import libtorrent as lt

    alice = make_user("alice")
    popular_data = os.urandom(700_000)
    popular = make_version(alice, "popular", kind="dataset", files={"rows.jsonl": popular_data})
    make_version(alice, "quiet", kind="dataset", files={"rows.jsonl": b"{}\n"})
    Version.objects.filter(pk=popular.pk).update(downloads=9)
    [(blob, name)] = most_requested(1)
    assert blob.sha256 == hashlib.sha256(popular_data).hexdigest() and name == "rows.jsonl"

    seeder = Seeder(listen="127.0.0.1:0", folder=tmp_path / "seeding")
    assert seeder.refresh(1) == [blob.sha256]
    client = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                         "enable_upnp": False, "enable_natpmp": False})
    info = lt.torrent_info(lt.bdecode(bytes(swarm_for(blob, name).torrent)))  # no web seeds: peers only
    assert not info.web_seeds()
    handle = client.add_torrent({"ti": info, "save_path": str(tmp_path / "peer")})
    handle.connect_peer(("127.0.0.1", seeder.port))
    wait_until(lambda: handle.status().is_seeding, timeout=120, what="the peer to download from the seeder")
    assert (tmp_path / "peer" / name).read_bytes() == popular_data


def test_sign_unsigned_signs_what_was_published_before(make_user, publish_adapter):
    version, _ = publish_adapter(make_user("alice"), "old", rank=4, alpha=8)
    assert not version.files.filter(path=SIGNATURE_FILE).exists()
    out = io.StringIO()
    call_command("sign_unsigned", stdout=out)
    assert "1 versions and 0 stacks signed" in out.getvalue()
    assert set(version.files.values_list("path", flat=True)) >= {SIGNATURE_FILE, ATTESTATIONS_FILE}
    assert BlobSwarm.objects.filter(blob=version.files.get(path="adapter_model.safetensors").blob).exists()
    again = io.StringIO()
    call_command("sign_unsigned", stdout=again)
    assert "0 versions and 0 stacks signed" in again.getvalue()


def test_signing_key_command_rotates_and_revokes(settings, tmp_path):
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.SIGNING_KEY = tmp_path / "keys" / "current.pem"
    shown = io.StringIO()
    call_command("signing_key", stdout=shown)
    [first] = [line.split()[0] for line in shown.getvalue().splitlines()]
    rotated = io.StringIO()
    call_command("signing_key", "rotate", stdout=rotated)
    assert f"{first}  previous" in rotated.getvalue()
    revoked = io.StringIO()
    call_command("signing_key", "revoke", first, stdout=revoked)
    assert f"{first}  revoked" in revoked.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no key nope among the hub's keys"):
        call_command("signing_key", "revoke", "nope")

"""Torrents, magnets and Metalinks of the blobs the hub serves.

A blob's torrent is a BitTorrent v1+v2 hybrid (BEP 52, made by libtorrent) whose web seeds (BEP 19 `url-list`) are
every URL that serves the blob (`sources.blob_sources`). It is made once per blob, on first request or when a
worker signs the files, and kept with the sha-256 of each piece (`BlobSwarm`); the web seeds are added each time
it is served, so they stay current without changing the info hash.

Per-piece sha-256 are published in the blob's Metalink 4 (RFC 5854 `<pieces type="sha-256">`), with every HTTP
source: `nomoat pull` and aria2 fetch ranges from all sources at once and check each piece against it.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from hub.catalog.blobstore import copy_blob_to, get_blob_store
from hub.catalog.models import Blob
from hub.catalog.workdir import scratch_dir
from hub.provenance.models import BlobSwarm
from hub.provenance.sources import Source
from workers.engine.pieces import piece_length, piece_sha256

METALINK_NS = "urn:ietf:params:xml:ns:metalink"


def swarm_for(blob: Blob, name: str) -> BlobSwarm:
    """The blob's torrent and piece hashes, made now if this is the first time (one row per blob, whoever wins)."""
    found = BlobSwarm.objects.filter(blob=blob).first()
    if found is not None:
        return found
    import libtorrent as lt

    scratch = scratch_dir("torrents", blob.sha256)
    try:
        path = copy_blob_to(get_blob_store(), blob.sha256, scratch / name)
        length = piece_length(blob.size)
        creator = lt.create_torrent(lt.list_files(str(path)), length)  # v1+v2 hybrid: libtorrent's default
        creator.set_creator("nomoat")
        lt.set_piece_hashes(creator, str(scratch))
        torrent = lt.bencode(creator.generate())
        info = lt.torrent_info(lt.bdecode(torrent)).info_hashes()
        pieces = piece_sha256(path, length)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        with transaction.atomic():
            return BlobSwarm.objects.create(blob=blob, name=name, piece_length=length, btih=str(info.v1),
                                            btmh=str(info.v2), torrent=torrent, piece_sha256=pieces)
    except IntegrityError:  # made at the same moment elsewhere: the same content, keep theirs
        return BlobSwarm.objects.get(blob=blob)


def torrent_file(swarm: BlobSwarm, sources: list[Source]) -> bytes:
    """The .torrent with the current web seeds."""
    import libtorrent as lt

    data = lt.bdecode(bytes(swarm.torrent))
    data[b"url-list"] = [s.url.encode() for s in sources]
    return lt.bencode(data)


def magnet(swarm: BlobSwarm, web_seeds: list[str], torrent_url: str) -> str:
    """`magnet:?xt=urn:btih:…&xt=urn:btmh:1220…&dn=…&ws=…` (libtorrent's, from the stored info hashes: no torrent
    is decoded), plus `xs=` where the .torrent is."""
    from urllib.parse import quote

    import libtorrent as lt

    params = lt.add_torrent_params()
    params.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(swarm.btih)), lt.sha256_hash(bytes.fromhex(swarm.btmh)))
    params.name = swarm.name
    params.url_seeds = web_seeds
    return f"{lt.make_magnet_uri(params)}&xs={quote(torrent_url, safe='')}"


def metalink(blob: Blob, swarm: BlobSwarm, sources: list[Source]) -> bytes:
    """RFC 5854 Metalink 4: the file's size and sha-256, its pieces' sha-256, and every HTTP source."""
    ET.register_namespace("", METALINK_NS)
    root = ET.Element(f"{{{METALINK_NS}}}metalink")
    ET.SubElement(root, f"{{{METALINK_NS}}}generator").text = "nomoat"
    ET.SubElement(root, f"{{{METALINK_NS}}}published").text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    file = ET.SubElement(root, f"{{{METALINK_NS}}}file", name=swarm.name)
    ET.SubElement(file, f"{{{METALINK_NS}}}size").text = str(blob.size)
    ET.SubElement(file, f"{{{METALINK_NS}}}hash", type="sha-256").text = blob.sha256
    pieces = ET.SubElement(file, f"{{{METALINK_NS}}}pieces", length=str(swarm.piece_length), type="sha-256")
    for digest in swarm.piece_sha256:
        ET.SubElement(pieces, f"{{{METALINK_NS}}}hash").text = digest
    for priority, source in enumerate(sources, start=1):
        ET.SubElement(file, f"{{{METALINK_NS}}}url", priority=str(min(priority, 999999))).text = source.url
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)

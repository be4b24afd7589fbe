"""The seeder: a libtorrent session that seeds the most requested blobs, so BitTorrent clients find a peer even when
every web seed is busy. Run by `manage.py seed_blobs` (one process per machine that holds the blobs; see deploy/).

It seeds from local copies (hard links into a local blob store, the blob cache's copies for S3) and checks nothing
again: libtorrent's seed mode trusts the files, which the blob store addressed by their sha256.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db.models import F

from hub.catalog.blobstore import copy_blob_to, get_blob_store
from hub.catalog.models import Blob, VersionFile, VersionState
from hub.provenance.swarm import swarm_for
from hub.stacks.models import BuildState, StackFile


def most_requested(top: int) -> list[tuple[Blob, str]]:
    """(blob, file name) of the `top` most downloaded public files: versions', then stacks', by downloads."""
    ranked: dict[str, tuple[int, Blob, str]] = {}
    files = (VersionFile.objects.filter(version__state=VersionState.PUBLISHED).select_related("blob")
             .annotate(count=F("version__downloads")).order_by("-count")[: top * 4])
    stack_files = (StackFile.objects.filter(build__state=BuildState.READY).select_related("blob")
                   .annotate(count=F("build__downloads")).order_by("-count")[: top * 4])
    for file in [*files, *stack_files]:
        if file.blob_id not in ranked or ranked[file.blob_id][0] < file.count:
            ranked[file.blob_id] = (file.count, file.blob, file.path.rsplit("/", 1)[-1])
    best = sorted(ranked.values(), key=lambda item: (-item[0], -item[1].size))[:top]
    return [(blob, name) for _, blob, name in best]


class Seeder:
    def __init__(self, *, listen: str, dht: bool = False, folder: Path | None = None) -> None:
        import libtorrent as lt

        self.lt = lt
        self.folder = folder or settings.WORK_DIR / "seeding"
        self.session = lt.session({"listen_interfaces": listen, "enable_dht": dht, "enable_lsd": False,
                                   "enable_upnp": False, "enable_natpmp": False})
        self.seeding: dict[str, object] = {}  # sha256 -> torrent handle

    @property
    def port(self) -> int:
        return self.session.listen_port()

    def refresh(self, top: int) -> list[str]:
        """Seed the current top blobs; stop seeding those that left it. Returns the sha256 seeded."""
        wanted = most_requested(top)
        keep = {blob.sha256 for blob, _ in wanted}
        for sha256 in set(self.seeding) - keep:
            self.session.remove_torrent(self.seeding.pop(sha256))
            shutil.rmtree(self.folder / sha256, ignore_errors=True)
        for blob, name in wanted:
            if blob.sha256 in self.seeding:
                continue
            swarm = swarm_for(blob, name)
            save_path = self.folder / blob.sha256
            copy_blob_to(get_blob_store(), blob.sha256, save_path / swarm.name)
            info = self.lt.torrent_info(self.lt.bdecode(bytes(swarm.torrent)))
            self.seeding[blob.sha256] = self.session.add_torrent(
                {"ti": info, "save_path": str(save_path), "flags": self.lt.torrent_flags.seed_mode})
        return sorted(self.seeding)
